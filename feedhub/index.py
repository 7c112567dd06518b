"""The SQLite index: what every post file says, parsed once and kept in step with the folder.

The post files are the source of truth; this file is derived and can be deleted at
any time. It is synced by (path, mtime, size), so a restart over an unchanged folder
reads no post, and every change bumps a version number per feed so that the web
processes know which built feeds to drop.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any
from zoneinfo import ZoneInfo

from feedhub.config import Config
from feedhub.db import Database, run_script
from feedhub.errors import FeedhubError
from feedhub.posts import Enclosure, Post, PostFile, is_post_file, read_post_file
from feedhub.render import Rendered, find_via, render_post
from feedhub.text import quoted
from feedhub.urls import UNCATEGORIZED, expand_permalink

log = logging.getLogger(__name__)

INDEX_FILE = "index.sqlite3"
SCHEMA_VERSION = 4  # 4: permalinks by Jekyll's exact slug rule (marks kept, ½ and ² not)
# Bump when rendering or sanitizing changes, so stored HTML is rebuilt.
RENDER_VERSION = 1
SITE = ""  # the version key of the site-wide feed; every change bumps it
_BATCH = 500
_ENTRY_ID_NAMESPACE = uuid.UUID("6f1d7a52-3c0e-4c4b-9a57-5a0f2e0b8c11")

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE files (
    path TEXT PRIMARY KEY,
    mtime_ns INTEGER NOT NULL,
    size INTEGER NOT NULL,
    digest TEXT NOT NULL,
    status TEXT NOT NULL,          -- 'post' | 'draft' | 'skipped'
    reason TEXT,                   -- why it was skipped
    warnings TEXT NOT NULL         -- JSON list
);
CREATE TABLE posts (
    path TEXT PRIMARY KEY REFERENCES files(path) ON DELETE CASCADE,
    digest TEXT NOT NULL,          -- of the file; stored HTML belongs to this content
    entry_id TEXT NOT NULL UNIQUE,
    permalink TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    published TEXT NOT NULL,
    published_ts REAL NOT NULL,
    updated TEXT NOT NULL,
    updated_ts REAL NOT NULL,
    visible INTEGER NOT NULL,      -- 0 while its date is in the future
    author TEXT,
    description TEXT,
    categories TEXT NOT NULL,      -- JSON list, as written in the post
    tags TEXT NOT NULL,            -- JSON list
    via TEXT,
    enclosures TEXT NOT NULL,      -- JSON list of [url, type, length]
    source TEXT,                   -- for aggregated posts: the source, upstream identity and link
    source_id TEXT,
    source_url TEXT,
    body TEXT NOT NULL,
    body_format TEXT NOT NULL,
    html TEXT,                     -- rendered on first use, then kept
    summary TEXT
);
CREATE INDEX posts_by_date ON posts (visible, published_ts DESC, path);
CREATE INDEX posts_by_update ON posts (visible, updated_ts);
CREATE INDEX posts_by_source_id ON posts (source, source_id);
CREATE INDEX posts_by_source_url ON posts (source, source_url);
CREATE TABLE post_categories (
    slug TEXT NOT NULL,
    path TEXT NOT NULL REFERENCES posts(path) ON DELETE CASCADE,
    published_ts REAL NOT NULL,
    updated_ts REAL NOT NULL,
    visible INTEGER NOT NULL,
    tag TEXT,                      -- the post's tag for this category: its display title
    PRIMARY KEY (slug, path)
);
CREATE INDEX post_categories_by_date ON post_categories (slug, visible, published_ts DESC, path);
CREATE INDEX post_categories_by_update ON post_categories (slug, visible, updated_ts);
CREATE INDEX post_categories_by_path ON post_categories (path);
CREATE TABLE versions (key TEXT PRIMARY KEY, version INTEGER NOT NULL);
"""

_ENTRY_COLUMNS = (
    "p.path, p.digest, p.entry_id, p.permalink, p.title, p.published, p.updated, p.author, "
    "p.description, p.categories, p.tags, p.via, p.enclosures, p.body, p.body_format, p.html, p.summary"
)


@dataclass(frozen=True)
class IndexSettings:
    """Everything the stored rows depend on; a change rebuilds the index."""

    posts_dir: Path
    timezone: ZoneInfo
    base_url: str
    permalink: str
    future: bool

    @classmethod
    def from_config(cls, config: Config) -> IndexSettings:
        return cls(config.posts_dir, config.timezone, config.base_url, config.permalink, config.future)

    def fingerprint(self) -> str:
        settings = [str(self.posts_dir), self.timezone.key, self.base_url, self.permalink, self.future]
        return json.dumps([SCHEMA_VERSION, RENDER_VERSION, *settings])


@dataclass(frozen=True)
class Entry:
    path: str
    entry_id: str
    permalink: str
    title: str
    published: datetime
    updated: datetime
    author: str | None
    categories: tuple[str, ...]
    tags: tuple[str, ...]
    via: str | None
    enclosures: tuple[Enclosure, ...]
    html: str
    summary: str


@dataclass(frozen=True)
class Headline:
    permalink: str
    title: str
    published: datetime


@dataclass(frozen=True)
class CategoryStats:
    slug: str
    count: int
    newest: datetime | None
    tag: str | None  # the newest post's tag for it: the title when the config names none


@dataclass(frozen=True)
class Problem:
    path: str
    reason: str


@dataclass
class SyncReport:
    added: int = 0
    updated: int = 0
    removed: int = 0
    skipped: list[Problem] = field(default_factory=list)

    def include(self, other: SyncReport) -> None:
        self.added += other.added
        self.updated += other.updated
        self.removed += other.removed
        self.skipped += other.skipped


class Index:
    def __init__(
        self,
        db_path: Path,
        settings: IndexSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db_path = db_path
        self.settings = settings
        self.clock = clock
        self._db = Database(db_path)
        self._conn = self._db.conn
        self._transaction = self._db.transaction
        self._lock_path = db_path.with_name(db_path.name + ".lock")
        if not self._is_current():  # the common case needs no lock: opening never waits behind a sync
            with self._exclusive():
                self._prepare()

    # ---- connections and locking -------------------------------------------------------

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Serialize syncs across threads and processes sharing the data folder."""
        with open(self._lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _is_current(self) -> bool:
        """Whether the file holds an index built with these settings (read without the lock)."""
        try:
            row = self._conn().execute("SELECT value FROM meta WHERE key='fingerprint'").fetchone()
        except sqlite3.DatabaseError:
            return False  # new, or unreadable: _prepare decides, under the lock
        return row is not None and row[0] == self.settings.fingerprint()

    def _prepare(self) -> None:
        """Create the schema, or rebuild it when the settings it was built with changed."""
        fingerprint = self.settings.fingerprint()
        try:
            stored = self._conn().execute("SELECT value FROM meta WHERE key='fingerprint'").fetchone()
        except sqlite3.OperationalError:
            stored = None  # a new, empty file
        except sqlite3.DatabaseError as exc:
            log.warning("%s: unreadable (%s); rebuilding it from the post files", self.db_path, exc)
            self._db.forget_connection()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.db_path}{suffix}").unlink(missing_ok=True)
            stored = None
        if stored and stored[0] == fingerprint:
            return
        if stored:
            log.info("%s: settings or schema changed; rebuilding the index", self.db_path)
        conn = self._conn()
        conn.execute("PRAGMA foreign_keys=OFF")
        with self._transaction() as conn:
            for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall():
                conn.execute(f'DROP TABLE "{table}"')
            run_script(conn, _SCHEMA)
            conn.execute("INSERT INTO meta VALUES ('fingerprint', ?)", (fingerprint,))
            # Versions count from 1 again in a new index: this tells its versions from an older one's.
            conn.execute("INSERT INTO meta VALUES ('instance', ?)", (uuid.uuid4().hex,))
            conn.execute("INSERT INTO versions VALUES (?, 1)", (SITE,))
        conn.execute("PRAGMA foreign_keys=ON")

    # ---- syncing with the folder ------------------------------------------------------

    def sync_all(self, advance: Callable[[int], object] | None = None) -> SyncReport:
        """Compare the whole folder with the index by (path, mtime, size) and apply the difference;
        ``advance`` is told of each batch of files read (for a progress bar)."""
        with self._exclusive():
            conn = self._conn()
            known = {
                path: (mtime, size)
                for path, mtime, size in conn.execute("SELECT path, mtime_ns, size FROM files")
            }
            # One table in memory, not two: what the scan finds is taken out of `known` as it comes,
            # so what is left there at the end is what was removed.
            changed = sorted(path for path, stamp in self._scan() if known.pop(path, None) != stamp)
            removed = list(known)
            del known
            report = self._apply(changed, removed, advance)
            self._publish_due()
            with self._transaction() as conn:
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('synced_at', ?)", (str(time.time()),))
            return report

    def full_sync_stamp(self) -> str | None:
        """Names the last comparison of the whole folder with the index, by any process."""
        row = self._conn().execute("SELECT value FROM meta WHERE key='synced_at'").fetchone()
        return str(row[0]) if row else None

    def sync_paths(self, paths: Iterable[str]) -> SyncReport:
        """Re-read files reported changed (by the watcher), whatever their mtime says."""
        with self._exclusive():
            conn = self._conn()
            changed, removed = [], []
            for path in sorted(set(paths)):
                if is_post_file(PurePosixPath(path).name) and _is_file_entry(self.settings.posts_dir / path):
                    changed.append(path)
                elif conn.execute("SELECT 1 FROM files WHERE path=?", (path,)).fetchone():
                    removed.append(path)
            return self._apply(changed, removed)

    def publish_due(self) -> int:
        """Make posts whose date has come visible; returns how many."""
        with self._exclusive():
            return self._publish_due()

    def next_due(self) -> float | None:
        (due,) = self._conn().execute("SELECT min(published_ts) FROM posts WHERE visible=0").fetchone()
        return float(due) if due is not None else None

    def _scan(self) -> Iterator[tuple[str, tuple[int, int]]]:
        """(relative path, (mtime_ns, size)) of every post file, subfolders included."""
        root = self.settings.posts_dir
        if not root.is_dir():
            # Never read a vanished folder (an unmounted disk, say) as "every post was deleted".
            raise FeedhubError(f"{root}: the posts folder is missing")
        folders = [("", str(root))]
        while folders:
            prefix, folder = folders.pop()
            try:
                entries = os.scandir(folder)
            except OSError as exc:
                raise FeedhubError(f"{folder}: cannot list the folder: {exc.strerror}") from None
            with entries:
                for entry in entries:
                    name = entry.name
                    if entry.is_dir(follow_symlinks=False):
                        if not name.startswith((".", "_", "#")):
                            folders.append((f"{prefix}{name}/", entry.path))
                    elif is_post_file(name):
                        try:
                            stat = entry.stat()
                        except FileNotFoundError:
                            continue
                        yield prefix + name, (stat.st_mtime_ns, stat.st_size)

    def _apply(
        self, changed: list[str], removed: list[str], advance: Callable[[int], object] | None = None
    ) -> SyncReport:
        report = SyncReport()
        root, tz = self.settings.posts_dir, self.settings.timezone
        removed = list(removed)
        for start in range(0, len(changed), _BATCH):
            # Parse outside the transaction: readers and other writers wait only for the writes.
            files = [(path, read_post_file(root, path, tz)) for path in changed[start : start + _BATCH]]
            removed += [path for path, file in files if file is None]  # deleted since it was listed
            present = [file for _, file in files if file is not None]
            try:
                report.include(self._store_batch(present, one_by_one=False))
            except sqlite3.OperationalError:
                raise
            except Exception:  # a file the index cannot take: the batch again, each file on its own
                report.include(self._store_batch(present, one_by_one=True))
            if advance is not None:
                advance(len(files))
        if removed:
            with self._transaction() as conn:
                affected: set[str] = set()
                for path in removed:
                    affected |= self._categories_of(conn, path)
                    if conn.execute("DELETE FROM files WHERE path=?", (path,)).rowcount:
                        report.removed += 1
                        log.info("%s: removed", path)
                self._bump(conn, affected)
        return report

    def _store_batch(self, files: list[PostFile], one_by_one: bool) -> SyncReport:
        """Store files in one transaction; ``one_by_one`` puts each in a savepoint of its own."""
        report = SyncReport()
        store = self._store_or_skip if one_by_one else self._store
        with self._transaction() as conn:
            touched = [store(conn, file, report) for file in files]
            if any(keys is not None for keys in touched):
                self._bump(conn, set().union(*(keys for keys in touched if keys)))
        return report

    def _store_or_skip(self, conn: sqlite3.Connection, file: PostFile, report: SyncReport) -> set[str] | None:
        """Store one file; one the index cannot take is skipped with the reason, never the batch.

        The reading already refuses what it can name (bad dates, sizes, YAML); this is the net
        under it, so that a post nobody foresaw cannot stop every other post from being indexed.
        A database that fails (locked, full, read-only) is not the file's fault: that propagates.
        """
        conn.execute("SAVEPOINT one_file")
        try:
            touched = self._store(conn, file, report)
        except sqlite3.OperationalError:
            conn.execute("ROLLBACK TO one_file")
            conn.execute("RELEASE one_file")
            raise
        except Exception as exc:
            conn.execute("ROLLBACK TO one_file")
            log.exception("%s: cannot be indexed", file.path)
            problem = f"cannot be indexed: {type(exc).__name__}: {quoted(str(exc))}"
            touched = self._store(conn, replace(file, post=None, problem=problem), report)
        conn.execute("RELEASE one_file")
        return touched

    def _store(self, conn: sqlite3.Connection, file: PostFile, report: SyncReport) -> set[str] | None:
        """Write one file's rows; return the feeds it touched, or None when its content is unchanged."""
        old = conn.execute("SELECT digest FROM files WHERE path=?", (file.path,)).fetchone()
        if old and old[0] == file.digest:
            # Touched, copied or checked out again: same bytes, so the rows (and rendered HTML) stand.
            conn.execute(
                "UPDATE files SET mtime_ns=?, size=? WHERE path=?", (file.mtime_ns, file.size, file.path)
            )
            return None
        affected = self._categories_of(conn, file.path)
        conn.execute("DELETE FROM posts WHERE path=?", (file.path,))
        post = file.post
        warnings = list(post.warnings) if post else []
        status = "skipped" if post is None else "post" if post.published else "draft"
        conn.execute(
            "INSERT INTO files VALUES (?, ?, ?, ?, ?, ?, '[]') ON CONFLICT (path) DO UPDATE SET "
            "mtime_ns=excluded.mtime_ns, size=excluded.size, digest=excluded.digest, "
            "status=excluded.status, reason=excluded.reason",
            (file.path, file.mtime_ns, file.size, file.digest, status, file.problem),
        )
        if post is None:
            report.skipped.append(Problem(file.path, file.problem or "unreadable"))
            log.warning("%s: skipped: %s", file.path, file.problem)
        elif post.published:
            affected |= self._insert_post(conn, post, file.digest, warnings)
        conn.execute("UPDATE files SET warnings=? WHERE path=?", (json.dumps(warnings), file.path))
        for warning in warnings:
            log.warning("%s: %s", file.path, warning)
        if old:
            report.updated += 1
        else:
            report.added += 1
        return affected

    def _insert_post(
        self, conn: sqlite3.Connection, post: Post, digest: str, warnings: list[str]
    ) -> set[str]:
        site_date = post.date.astimezone(self.settings.timezone)
        permalink = self._free_permalink(
            conn,
            post.path,
            post.permalink
            or expand_permalink(self.settings.permalink, post.categories, site_date, post.slug),
            warnings,
        )
        entry_id = self._free_entry_id(conn, post, warnings)
        updated = post.updated or post.date
        visible = int(self.settings.future or post.date.timestamp() <= self.clock())
        values = (
            post.path,
            digest,
            entry_id,
            permalink,
            post.title,
            post.date.isoformat(),
            post.date.timestamp(),
            updated.isoformat(),
            updated.timestamp(),
            visible,
            post.author,
            post.description,
            json.dumps(post.categories, ensure_ascii=False),
            json.dumps(post.tags, ensure_ascii=False),
            find_via(post.body) if post.body_format == "markdown" else None,
            json.dumps([[e.url, e.type, e.length] for e in post.enclosures]),
            post.source,
            post.source_id,
            post.source_url,
            post.body,
            post.body_format,
        )
        # html and summary stay NULL: they are rendered on first use
        conn.execute(f"INSERT INTO posts VALUES ({', '.join('?' * len(values))}, NULL, NULL)", values)
        slugs = post.categories or (UNCATEGORIZED,)
        conn.executemany(
            "INSERT INTO post_categories VALUES (?, ?, ?, ?, ?, ?)",
            [
                (
                    slug,
                    post.path,
                    post.date.timestamp(),
                    updated.timestamp(),
                    visible,
                    _paired_tag(post, position),
                )
                for position, slug in enumerate(slugs)
            ],
        )
        return set(slugs)

    def _free_permalink(self, conn: sqlite3.Connection, path: str, wanted: str, warnings: list[str]) -> str:
        holder = conn.execute("SELECT path FROM posts WHERE permalink=?", (wanted,)).fetchone()
        if not holder:
            return wanted
        tag = hashlib.blake2b(path.encode(), digest_size=3).hexdigest()
        stem, dot, ext = wanted.rstrip("/").rpartition(".")
        unique = f"{stem}-{tag}.{ext}" if dot and "/" not in ext else f"{wanted.rstrip('/')}-{tag}"
        unique += "/" if wanted.endswith("/") else ""
        warnings.append(f"permalink {wanted} is taken by {holder[0]}; this post is at {unique}")
        return unique

    def _free_entry_id(self, conn: sqlite3.Connection, post: Post, warnings: list[str]) -> str:
        """The post's `id`, else one derived from its file path (not its title or category)."""
        stem = str(PurePosixPath(post.path).with_suffix(""))
        candidates = [f"urn:uuid:{uuid.uuid5(_ENTRY_ID_NAMESPACE, name)}" for name in (stem, post.path)]
        if post.entry_id:
            candidates.insert(0, post.entry_id)
        for candidate in candidates:
            holder = conn.execute("SELECT path FROM posts WHERE entry_id=?", (candidate,)).fetchone()
            if not holder:
                return candidate
            warnings.append(f"entry id {candidate} is taken by {holder[0]}")
        raise AssertionError(f"{post.path}: no free entry id")  # the path-derived id is unique per path

    def _categories_of(self, conn: sqlite3.Connection, path: str) -> set[str]:
        return {row[0] for row in conn.execute("SELECT slug FROM post_categories WHERE path=?", (path,))}

    def _bump(self, conn: sqlite3.Connection, keys: set[str]) -> None:
        (current,) = conn.execute("SELECT version FROM versions WHERE key=?", (SITE,)).fetchone()
        conn.executemany(
            "INSERT INTO versions VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET version=excluded.version",
            [(key, current + 1) for key in keys | {SITE}],
        )

    def _publish_due(self) -> int:
        now = self.clock()
        conn = self._conn()
        due = conn.execute(
            "SELECT 1 FROM posts WHERE visible=0 AND published_ts<=? LIMIT 1", (now,)
        ).fetchone()
        if not due:
            return 0
        with self._transaction() as conn:
            slugs = {
                row[0]
                for row in conn.execute(
                    "SELECT slug FROM post_categories WHERE visible=0 AND published_ts<=?", (now,)
                )
            }
            count = conn.execute(
                "UPDATE posts SET visible=1 WHERE visible=0 AND published_ts<=?", (now,)
            ).rowcount
            conn.execute("UPDATE post_categories SET visible=1 WHERE visible=0 AND published_ts<=?", (now,))
            self._bump(conn, slugs)
        log.info("published %d scheduled post(s)", count)
        return count

    # ---- queries --------------------------------------------------------------------------

    def instance(self) -> str:
        """Identifies this index file: versions are comparable only within one instance."""
        return str(self._conn().execute("SELECT value FROM meta WHERE key='instance'").fetchone()[0])

    def published_posts(self) -> Iterator[tuple[str, str, tuple[str, ...]]]:
        """(permalink, digest of the file, categories) of every visible post."""
        rows = self._conn().execute("SELECT permalink, digest, categories FROM posts WHERE visible=1")
        for permalink, digest, categories in rows:
            yield permalink, digest, tuple(json.loads(categories))

    def version(self, key: str) -> int:
        """The version of a feed (a category slug, or SITE); 0 for an unknown one."""
        row = self._conn().execute("SELECT version FROM versions WHERE key=?", (key,)).fetchone()
        return row[0] if row else 0

    def feed_size(self, slug: str | None) -> tuple[int, datetime | None]:
        """How many visible posts a feed has, and the newest `updated` among them."""
        conn = self._conn()
        if slug is None:
            (count,) = conn.execute("SELECT count(*) FROM posts WHERE visible=1").fetchone()
            newest = conn.execute(
                "SELECT updated FROM posts WHERE visible=1 ORDER BY updated_ts DESC LIMIT 1"
            ).fetchone()
        else:
            (count,) = conn.execute(
                "SELECT count(*) FROM post_categories WHERE slug=? AND visible=1", (slug,)
            ).fetchone()
            newest = conn.execute(
                "SELECT p.updated FROM post_categories c JOIN posts p USING (path) "
                "WHERE c.slug=? AND c.visible=1 ORDER BY c.updated_ts DESC LIMIT 1",
                (slug,),
            ).fetchone()
        return count, datetime.fromisoformat(newest[0]) if newest else None

    def entries(self, slug: str | None, offset: int, limit: int) -> list[Entry]:
        """A feed's visible posts, newest first, rendered."""
        if slug is None:
            rows = self._conn().execute(
                f"SELECT {_ENTRY_COLUMNS} FROM posts p WHERE p.visible=1 "
                "ORDER BY p.published_ts DESC, p.path LIMIT ? OFFSET ?",
                (limit, offset),
            )
        else:
            rows = self._conn().execute(
                f"SELECT {_ENTRY_COLUMNS} FROM post_categories c JOIN posts p USING (path) "
                "WHERE c.slug=? AND c.visible=1 ORDER BY c.published_ts DESC, c.path LIMIT ? OFFSET ?",
                (slug, limit, offset),
            )
        return self._rendered(rows.fetchall())

    def entry_at(self, permalink: str) -> Entry | None:
        rows = (
            self._conn()
            .execute(
                f"SELECT {_ENTRY_COLUMNS} FROM posts p WHERE p.permalink=? AND p.visible=1", (permalink,)
            )
            .fetchall()
        )
        entries = self._rendered(rows)
        return entries[0] if entries else None

    def _rendered(self, rows: list[tuple[Any, ...]]) -> list[Entry]:
        renders: dict[str, tuple[str, Rendered]] = {}
        for path, digest, *_, description, _c, _t, _v, _e, body, body_format, html, _s in rows:
            if html is None:
                renders[path] = (digest, render_post(body, body_format, self.settings.base_url, description))
        if renders:
            self._keep_renders(renders)
        entries = []
        for row in rows:
            (path, _digest, entry_id, permalink, title, published, updated, author, _d) = row[:9]
            categories, tags, via, enclosures, _b, _f, html, summary = row[9:]
            if path in renders:
                html, summary = renders[path][1].html, renders[path][1].summary
            entries.append(
                Entry(
                    path=path,
                    entry_id=entry_id,
                    permalink=permalink,
                    title=title,
                    published=datetime.fromisoformat(published),
                    updated=datetime.fromisoformat(updated),
                    author=author,
                    categories=tuple(json.loads(categories)),
                    tags=tuple(json.loads(tags)),
                    via=via,
                    enclosures=tuple(Enclosure(*item) for item in json.loads(enclosures)),
                    html=html,
                    summary=summary,
                )
            )
        return entries

    def _keep_renders(self, renders: dict[str, tuple[str, Rendered]]) -> None:
        """Store rendered HTML; skipped when a sync holds the database, it is only a cache."""
        conn = self._conn()
        try:
            conn.execute("PRAGMA busy_timeout=200")
            with self._transaction() as conn:
                conn.executemany(
                    "UPDATE posts SET html=?, summary=? WHERE path=? AND digest=?",
                    [(r.html, r.summary, path, digest) for path, (digest, r) in renders.items()],
                )
        except sqlite3.OperationalError as exc:
            log.debug("rendered HTML not stored this time: %s", exc)
        finally:
            conn.execute("PRAGMA busy_timeout=30000")

    def find_source_post(self, source: str, source_id: str, link: str | None, title: str) -> str | None:
        """The post a source already made of an upstream entry: by its identity, or by link and title."""
        conn = self._conn()
        row = conn.execute(
            "SELECT path FROM posts WHERE source=? AND source_id=?", (source, source_id)
        ).fetchone()
        if row is None and link:
            row = conn.execute(
                "SELECT path FROM posts WHERE source=? AND source_url=? AND title=?", (source, link, title)
            ).fetchone()
        return row[0] if row else None

    def newest_source_post(self, source: str) -> float | None:
        """When the newest post of a source was published (a timestamp), or None if it has none."""
        (newest,) = (
            self._conn().execute("SELECT max(published_ts) FROM posts WHERE source=?", (source,)).fetchone()
        )
        return float(newest) if newest is not None else None

    def categories(self) -> list[CategoryStats]:
        """Every category with visible posts, with its newest post's tag."""
        rows = self._conn().execute(
            """
            SELECT c.slug, c.count, c.newest, t.tag FROM (
                SELECT slug, count(*) AS count, max(published_ts) AS newest
                FROM post_categories WHERE visible=1 GROUP BY slug
            ) c LEFT JOIN (
                SELECT slug, tag,
                       row_number() OVER (PARTITION BY slug ORDER BY published_ts DESC, path) AS rank
                FROM post_categories WHERE visible=1 AND tag IS NOT NULL
            ) t ON t.slug = c.slug AND t.rank = 1
            ORDER BY c.slug
            """
        )
        return [
            CategoryStats(slug, count, datetime.fromtimestamp(newest, self.settings.timezone), tag)
            for slug, count, newest, tag in rows
        ]

    def category_tag(self, slug: str) -> str | None:
        row = (
            self._conn()
            .execute(
                "SELECT tag FROM post_categories WHERE slug=? AND visible=1 AND tag IS NOT NULL "
                "ORDER BY published_ts DESC, path LIMIT 1",
                (slug,),
            )
            .fetchone()
        )
        return row[0] if row else None

    def headlines(self, per_category: int) -> dict[str, list[Headline]]:
        """The newest posts of every category, for the home page."""
        rows = self._conn().execute(
            """
            SELECT slug, permalink, title, published FROM (
                SELECT c.slug, p.permalink, p.title, p.published,
                       row_number() OVER (PARTITION BY c.slug ORDER BY c.published_ts DESC, c.path) AS rank
                FROM post_categories c JOIN posts p USING (path) WHERE c.visible=1
            ) WHERE rank <= ? ORDER BY slug, rank
            """,
            (per_category,),
        )
        headlines: dict[str, list[Headline]] = {}
        for slug, permalink, title, published in rows:
            headlines.setdefault(slug, []).append(
                Headline(permalink, title, datetime.fromisoformat(published))
            )
        return headlines

    def category_headlines(self, slug: str, offset: int, limit: int) -> list[Headline]:
        rows = self._conn().execute(
            "SELECT p.permalink, p.title, p.published FROM post_categories c JOIN posts p USING (path) "
            "WHERE c.slug=? AND c.visible=1 ORDER BY c.published_ts DESC, c.path LIMIT ? OFFSET ?",
            (slug, limit, offset),
        )
        return [
            Headline(permalink, title, datetime.fromisoformat(published))
            for permalink, title, published in rows
        ]

    def problems(self) -> tuple[list[Problem], list[Problem]]:
        """(skipped files with their reason, warnings about published ones)."""
        conn = self._conn()
        skipped = [
            Problem(*row)
            for row in conn.execute("SELECT path, reason FROM files WHERE status='skipped' ORDER BY path")
        ]
        warnings = [
            Problem(path, warning)
            for path, stored in conn.execute(
                "SELECT path, warnings FROM files WHERE warnings != '[]' ORDER BY path"
            )
            for warning in json.loads(stored)
        ]
        return skipped, warnings

    def counts(self) -> dict[str, int]:
        conn = self._conn()
        posts, scheduled = conn.execute("SELECT count(*), count(*) - sum(visible) FROM posts").fetchone()
        drafts = conn.execute("SELECT count(*) FROM files WHERE status='draft'").fetchone()[0]
        categories = conn.execute(
            "SELECT count(DISTINCT slug) FROM post_categories WHERE visible=1"
        ).fetchone()[0]
        return {
            "posts": posts - (scheduled or 0),
            "scheduled": scheduled or 0,
            "drafts": drafts,
            "categories": categories,
        }


def _is_file_entry(path: Path) -> bool:
    """Whether a post file name is there as something else than a folder: as the scan counts them
    (a FIFO or a link out of the folder is then read, and reported as skipped)."""
    return os.path.lexists(path) and (os.path.islink(path) or not os.path.isdir(path))


def open_index(config: Config, clock: Callable[[], float] = time.time) -> Index:
    """The index of a configured site, in its data folder."""
    return Index(config.data_dir / INDEX_FILE, IndexSettings.from_config(config), clock)


def _paired_tag(post: Post, position: int) -> str | None:
    """The tag naming a category: tags pair with categories by position, or one tag names the one category."""
    if post.categories and len(post.tags) == len(post.categories):
        return post.tags[position]
    if len(post.categories) <= 1 and post.tags:
        return post.tags[0]
    return None
