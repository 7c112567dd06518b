"""The index's write side: keep the stored posts in step with the folder, and say what changed.

Synced by (path, mtime, size), so a restart over an unchanged folder reads no post; every
change bumps a version number per feed (and, on a shared database, NOTIFYs the other
hosts) so that web processes know which built feeds to drop. Used by the watcher, the CLI
and the aggregator's merge step. Writers take turns one transaction at a time (SQLite's
single writer, or a transaction-scoped advisory lock in PostgreSQL), so a turn costs no
round trip of its own; a comparison of the whole folder is one process's at a time.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import NamedTuple

from feedhub.config import Config
from feedhub.errors import FeedhubError, StorageError, StorageFault
from feedhub.index.identity import (
    EntryKey,
    entry_id_candidates,
    find_entries,
    paired_tag,
    permalink_variant,
    wanted_permalink,
)
from feedhub.index.model import FileStatus, Problem, SyncReport
from feedhub.index.schema import CHANGES_CHANNEL, INDEX_SCHEMA, SITE, IndexSettings
from feedhub.index.search import Searchable, post_tokens, searched_text, store_searchable
from feedhub.posts import Post, PostFile, is_post_file, read_post_file
from feedhub.processes import Turns, process_pool, processes_per_core
from feedhub.render import find_via
from feedhub.storage import open_storage
from feedhub.storage.base import Backend, Connection, Leadership, in_chunks
from feedhub.storage.schema import migrate
from feedhub.text import quoted
from feedhub.urls import category_slugs

log = logging.getLogger(__name__)

SYNC_LOCK = "index-sync"  # writers of the index take turns under it, a transaction each
SCAN_LOCK = "index-scan"  # one full comparison with the folder at a time: others would redo its reads
INDEXER_ROLE = "indexer"  # on a shared database, the one process that watches the folder
_BATCH = 500
# A sync of this many batches or more is a bulk write, and reads and stores in processes of its
# own (below, starting them costs more than they save).
_MANY_BATCHES = 8
# A bulk write's batches are larger: each turn's commit writes again the index pages it touched,
# and at 100k posts turns of 2,000 made a cold sync 1 to 1.5 s shorter than turns of 500 (another
# writer may wait a longer turn, about 0.15 s).
_BULK_BATCH = 2000


class IndexWriter:
    def __init__(
        self, backend: Backend, settings: IndexSettings, clock: Callable[[], float] = time.time
    ) -> None:
        self.backend = backend
        self.settings = settings
        self.clock = clock
        self._handoffs: list[_Handoff] = []
        self._handoffs_lock = threading.Lock()
        self._indexing = threading.Lock()
        self._prepare()

    # ---- schema and settings ----------------------------------------------------------

    def _prepare(self) -> None:
        """Bring the tables to this version and the rows to these settings; when both are already
        so (every start but the first), this reads two rows and takes no lock."""
        try:
            migrate(self.backend, INDEX_SCHEMA)
        except StorageError as exc:
            if exc.fault is not StorageFault.DAMAGED or not self.backend.discard():
                raise
            log.warning("%s; rebuilding it from the post files", exc)
            migrate(self.backend, INDEX_SCHEMA)
        with self.backend.reading() as conn:
            if _stored_fingerprint(conn) == self.settings.fingerprint():
                return
        with self._turn() as conn:
            stored = _stored_fingerprint(conn)
            if stored == self.settings.fingerprint():
                return  # another process did it while this one waited
            if stored:
                log.info(
                    "%s: the index's settings changed; rebuilding it from the post files", self.backend.where
                )
            for table in INDEX_SCHEMA.derived_tables:  # children first
                conn.execute(f"DELETE FROM {table}")
            conn.execute("INSERT INTO meta VALUES ('fingerprint', ?)", (self.settings.fingerprint(),))
            # Versions count from 1 again in a new index: this tells its versions from an older one's.
            conn.execute("INSERT INTO meta VALUES ('instance', ?)", (uuid.uuid4().hex,))
            conn.execute("INSERT INTO versions VALUES (?, 1)", (SITE,))
            self.backend.notify(conn, CHANGES_CHANNEL, "1")

    @contextmanager
    def _turn(self) -> Iterator[Connection]:
        """A write transaction in the writers' turn: what it reads, no other writer changes first."""
        with self.backend.transaction() as conn:
            self.backend.serialize(conn, SYNC_LOCK)
            yield conn

    def lead(self) -> Leadership | None:
        """The indexer's role: on a shared database one process at a time watches the folder."""
        return self.backend.lead(INDEXER_ROLE)

    # ---- syncing with the folder ------------------------------------------------------

    def sync_all(self, advance: Callable[[int], object] | None = None) -> SyncReport:
        """Compare the whole folder with the index by (path, mtime, size) and apply the difference;
        ``advance`` is told of each batch of files read (for a progress bar)."""
        with self.backend.exclusive(SCAN_LOCK):
            with self.backend.reading() as conn:
                known = {
                    row["path"]: (row["mtime_ns"], row["size"])
                    for row in conn.execute("SELECT path, mtime_ns, size FROM files")
                }
            # One table in memory, not two: what the scan finds is taken out of `known` as it comes,
            # so what is left there at the end is what was removed.
            changed = sorted(path for path, stamp in self._scan() if known.pop(path, None) != stamp)
            removed = list(known)
            del known
            report = self._apply(changed, removed, advance)
            self._publish_due()
            with self.backend.transaction() as conn:
                conn.execute(
                    "INSERT INTO meta VALUES ('synced_at', ?) "
                    "ON CONFLICT (key) DO UPDATE SET value=excluded.value",
                    (str(time.time()),),
                )
            return report

    def full_sync_stamp(self) -> str | None:
        """Names the last comparison of the whole folder with the index, by any process."""
        with self.backend.reading() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key='synced_at'").fetchone()
        return str(row["value"]) if row else None

    def sync_paths(self, paths: Iterable[str]) -> SyncReport:
        """Re-read files reported changed (by the watcher, or just written), whatever their mtime says.

        The files are read before this writer takes its turn, since reading and parsing are most
        of a sync's work and other writers need not wait for them."""
        report = SyncReport()
        listed = sorted(set(paths))
        for start in range(0, len(listed), _BATCH):
            report.include(self._store_paths(listed[start : start + _BATCH]))
        return report

    def store_files(self, files: Sequence[PostFile]) -> SyncReport:
        """Index files as their writer made them (not read again), each read again only if it
        changed since (see `_still_current`)."""
        report = SyncReport()
        for start in range(0, len(files), _BATCH):
            batch = files[start : start + _BATCH]
            report.include(self._store_read([(file.path, _indexed(file, self.settings)) for file in batch]))
        return report

    def index_written(self, files: Iterable[PostFile]) -> None:
        """Index files just written, with what other threads of this process wrote meanwhile: a
        poller's merges finishing together make one writers' turn, not one each (a turn's round
        trips are paid in this process's GIL queue, and the turns of every poller are one queue).
        Returns once these files are indexed; raises what indexing them raised."""
        handoff = _Handoff(list(files))
        with self._handoffs_lock:
            self._handoffs.append(handoff)
        with self._indexing:
            if not handoff.done:  # else a thread that held this lock before took these files too
                with self._handoffs_lock:
                    taken, self._handoffs = self._handoffs, []
                try:
                    self.store_files([file for each in taken for file in each.files])
                except Exception as exc:
                    for each in taken:
                        each.error = exc
                finally:
                    for each in taken:
                        each.done = True
        if handoff.error is not None:
            raise handoff.error

    def publish_due(self) -> int:
        """Make posts whose date has come visible; returns how many."""
        return self._publish_due()

    def next_due(self) -> float | None:
        with self.backend.reading() as conn:
            row = conn.execute("SELECT min(published_ts) AS due FROM posts WHERE visible=0").fetchone()
        return float(row["due"]) if row["due"] is not None else None

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
        """Store the changed files and forget the removed ones."""
        report = SyncReport()
        bulk = len(changed) >= _MANY_BATCHES * _BATCH
        size = _BULK_BATCH if bulk else _BATCH
        batches = [changed[start : start + size] for start in range(0, len(changed), size)]
        with self.backend.bulk() if bulk else nullcontext():
            for batch, stored in zip(batches, self._store_batches(batches, bulk), strict=True):
                report.include(stored)
                if advance is not None:
                    advance(len(batch))
        # Through the same turn as a read: a path re-created since the scan is stored, not forgotten.
        report.include(self._store_read([(path, None) for path in removed]))
        return report

    def _read(self, paths: list[str]) -> _Read:
        """Each path's file as read now; None where there is no post file (gone, or a folder)."""
        return _read_files(self.settings, paths)

    def _store_batches(self, batches: list[list[str]], bulk: bool) -> Iterator[SyncReport]:
        """Each batch read and stored, in order. In a bulk write, with cores enough, by processes of
        their own: each reads its batch (about half of a cold sync's work, and it holds the GIL)
        and stores it in the batch's turn, once the batches before it are stored. So the posts are
        stored in the order one process stores them (which of two posts wanting one permalink gets
        it repeats on every rebuild), and no post crosses to this process to be stored here
        (pickling one cost more than storing it)."""
        processes = processes_per_core()
        if processes < 2 or not bulk:
            yield from map(self._store_paths, batches)
            return
        done = 0
        try:
            start = (self.backend, self.settings, self.clock(), Turns())
            with process_pool(processes, __name__, initializer=_start_storing, initargs=start) as pool:
                stored = [pool.submit(_read_and_store, number, batch) for number, batch in enumerate(batches)]
                try:
                    for each in stored:
                        yield each.result()
                        done += 1
                finally:  # an error: the batches not begun are not begun
                    for each in stored:
                        each.cancel()
        except BrokenProcessPool:  # killed, or unable to start here: this process does the rest
            log.warning(
                "%s: the processes storing posts died; this one does the rest", self.settings.posts_dir
            )
            # From the first batch whose report did not arrive: storing a stored batch again finds
            # every file unchanged.
            yield from map(self._store_paths, batches[done:])

    def _store_paths(self, paths: list[str]) -> SyncReport:
        """These paths read and stored, in this process."""
        return self._store_read(self._read(paths))

    def _still_current(self, path: str, file: _Indexed | None) -> tuple[str, _Indexed | None]:
        """A file read before the writers' turn, read again if it changed since (another writer
        may have stored the newer bytes meanwhile)."""
        read_stamp = (file.mtime_ns, file.size) if file else None
        if _stamp(os.path.join(self.settings.posts_dir, path)) == read_stamp:
            return path, file
        return self._read([path])[0]

    def _store_read(self, read: _Read) -> SyncReport:
        """Store files as read, and forget the paths read as gone, in one turn of the writers."""
        try:
            return self._store_turn(read, one_by_one=False)
        except StorageError as exc:
            if exc.fault is not StorageFault.CONSTRAINT:
                raise
        except Exception:  # a file the index cannot take: the batch again, each file on its own
            pass
        return self._store_turn(read, one_by_one=True)

    def _store_turn(self, read: _Read, one_by_one: bool) -> SyncReport:
        """One transaction in the writers' turn; ``one_by_one`` puts each file in a savepoint."""
        report = SyncReport()
        with self._turn() as conn:
            current = [self._still_current(path, file) for path, file in read]
            present = [file for _, file in current if file is not None]
            # Pipelined, the turn waits for the server only where it reads; a savepoint cannot
            # be rolled back to in a pipeline that failed, so one by one goes a statement at a time.
            with nullcontext() if one_by_one else conn.pipelined():
                if one_by_one:
                    touched = [self._store_or_skip(conn, file, report) for file in present]
                else:
                    touched = [self._store(conn, present, report)] if present else []
                if any(keys is not None for keys in touched):
                    self._bump(conn, set().union(*(keys for keys in touched if keys)))
                report.include(self._remove(conn, [path for path, file in current if file is None]))
        return report

    def _remove(self, conn: Connection, paths: list[str]) -> SyncReport:
        """Forget these paths (in the caller's turn)."""
        report = SyncReport()
        if not paths:
            return report
        indexed = [row["path"] for row in conn.select_in("SELECT path FROM files WHERE path IN ({})", paths)]
        if not indexed:
            return report
        affected = _categories_of(conn, indexed)
        for listed, chunk in in_chunks(indexed):
            conn.execute(f"DELETE FROM files WHERE path IN ({listed})", chunk)
        for path in indexed:
            log.info("%s: removed", path)
        report.removed = len(indexed)
        self._bump(conn, affected)
        return report

    def _store_or_skip(self, conn: Connection, file: _Indexed, report: SyncReport) -> set[str] | None:
        """Store one file; one the index cannot take is skipped with the reason, never the batch.

        The reading already refuses what it can name (bad dates, sizes, YAML); this is the net
        under it, so that a post nobody foresaw cannot stop every other post from being indexed.
        A database that fails (locked, full, read-only) is not the file's fault: that propagates.
        """
        try:
            with conn.savepoint():
                return self._store(conn, [file], report)
        except StorageError as exc:
            if exc.fault is not StorageFault.CONSTRAINT:
                raise
            problem = f"cannot be indexed: {quoted(exc.problem)}"
        except Exception as exc:
            log.exception("%s: cannot be indexed", file.path)
            problem = f"cannot be indexed: {type(exc).__name__}: {quoted(str(exc))}"
        skipped = file._replace(status=FileStatus.SKIPPED, problem=problem, warnings=(), wants=None)
        with conn.savepoint():
            return self._store(conn, [skipped], report)

    def _store(self, conn: Connection, files: list[_Indexed], report: SyncReport) -> set[str] | None:
        """Write the files' rows, in a few statements for them all (each a round trip to a database
        server, in the writers' turn); the feeds they touched, or None when no content changed."""
        stored = {
            row["path"]: row["digest"]
            for row in conn.select_in(
                "SELECT path, digest FROM files WHERE path IN ({})", [file.path for file in files]
            )
        }
        # Touched, copied or checked out again: same bytes, so the rows (and rendered HTML) stand.
        same = [file for file in files if stored.get(file.path) == file.digest]
        conn.executemany(
            "UPDATE files SET mtime_ns=?, size=? WHERE path=?",
            [(file.mtime_ns, file.size, file.path) for file in same],
        )
        changed = [file for file in files if stored.get(file.path) != file.digest]
        if not changed:
            return None
        # Only a path in `files` can have rows in `posts` (a foreign key): new files need no clearing.
        indexed = [file.path for file in changed if file.path in stored]
        affected = _categories_of(conn, indexed) if indexed else set()
        for listed, chunk in in_chunks(indexed):
            conn.execute(f"DELETE FROM posts WHERE path IN ({listed})", chunk)
        warnings = {file.path: list(file.warnings) for file in changed}
        wants = {file.path: file.wants for file in changed if file.wants is not None}
        chosen = self._identities(conn, wants, warnings)
        conn.insert_rows(
            "INSERT INTO files VALUES {} ON CONFLICT (path) DO UPDATE SET "
            "mtime_ns=excluded.mtime_ns, size=excluded.size, digest=excluded.digest, "
            "status=excluded.status, reason=excluded.reason, warnings=excluded.warnings",
            [
                (
                    file.path,
                    file.mtime_ns,
                    file.size,
                    file.digest,
                    file.status.value,
                    file.problem,
                    json.dumps(warnings[file.path]),
                )
                for file in changed
            ],
        )
        affected |= self._insert_posts(conn, [file for file in changed if file.path in wants], chosen, wants)
        for file in changed:
            if file.status is FileStatus.SKIPPED:
                report.skipped.append(Problem(file.path, file.problem or "unreadable"))
                log.warning("%s: skipped: %s", file.path, file.problem)
            for warning in warnings[file.path]:
                log.warning("%s: %s", file.path, warning)
            if file.path in stored:
                report.updated += 1
            else:
                report.added += 1
        return affected

    def _identities(
        self, conn: Connection, wants: dict[str, _Wanted], warnings: dict[str, list[str]]
    ) -> dict[str, tuple[str, str]]:
        """Each post's (permalink, entry id): what it wants, unless a post stored or earlier in
        `wants` holds it (the posts being stored no longer hold anything)."""
        wanted = {path: want.permalink for path, want in wants.items()}
        candidates = {path: want.entry_ids for path, want in wants.items()}
        permalink_holders = _holders(conn, "permalink", set(wanted.values()))
        id_holders = _holders(conn, "entry_id", {id for ids in candidates.values() for id in ids})
        return {
            path: (
                _free_permalink(permalink_holders, path, wanted[path], warnings[path]),
                _free_entry_id(id_holders, path, candidates[path], warnings[path]),
            )
            for path in wants
        }

    def _insert_posts(
        self,
        conn: Connection,
        posts: list[_Indexed],
        chosen: dict[str, tuple[str, str]],
        wants: dict[str, _Wanted],
    ) -> set[str]:
        """The posts' rows and their category rows; the categories they are in."""
        rows, category_rows = [], []
        now = self.clock()
        for post in posts:
            permalink, entry_id = chosen[post.path]
            want = wants[post.path]
            visible = int(self.settings.future or want.published_ts <= now)
            rows.append((post.path, post.digest, entry_id, permalink, visible, *want.columns))
            category_rows += [
                (slug, post.path, want.published_ts, want.updated_ts, visible, tag)
                for slug, tag in want.categories
            ]
        conn.insert_rows(
            "INSERT INTO posts (path, digest, entry_id, permalink, visible, title, published, published_ts, "
            "updated, updated_ts, author, description, categories, tags, via, enclosures, source, source_id, "
            "source_url, body, body_format) VALUES {}",
            rows,
        )
        conn.insert_rows("INSERT INTO post_categories VALUES {}", category_rows)
        searchable = [
            Searchable(post.path, wants[post.path].published_ts, *wants[post.path].words) for post in posts
        ]
        store_searchable(conn, self.backend.dialect, searchable)
        return {row[0] for row in category_rows}

    def _bump(self, conn: Connection, keys: set[str]) -> None:
        current = conn.execute("SELECT version FROM versions WHERE key=?", (SITE,)).fetchone()["version"]
        conn.insert_rows(
            "INSERT INTO versions VALUES {} ON CONFLICT (key) DO UPDATE SET version=excluded.version",
            [(key, current + 1) for key in keys | {SITE}],
        )
        self.backend.notify(conn, CHANGES_CHANNEL, str(current + 1))

    def _publish_due(self) -> int:
        now = self.clock()
        with self.backend.reading() as conn:
            due = conn.execute(
                "SELECT 1 FROM posts WHERE visible=0 AND published_ts<=? LIMIT 1", (now,)
            ).fetchone()
        if not due:
            return 0
        with self._turn() as conn:
            rows = conn.execute(
                "SELECT slug FROM post_categories WHERE visible=0 AND published_ts<=?", (now,)
            )
            slugs = {row["slug"] for row in rows}
            count = conn.execute(
                "UPDATE posts SET visible=1 WHERE visible=0 AND published_ts<=?", (now,)
            ).rowcount
            conn.execute("UPDATE post_categories SET visible=1 WHERE visible=0 AND published_ts<=?", (now,))
            self._bump(conn, slugs)
        log.info("published %d scheduled post(s)", count)
        return count

    # ---- what the merge step asks -------------------------------------------------------

    def find_source_posts(self, source: str, keys: Sequence[EntryKey]) -> dict[str, str]:
        """The posts a source already made of these upstream entries (their paths, by identity)."""
        columns = "SELECT path, source_id, source_url, title FROM posts WHERE source=? AND"
        with self.backend.reading() as conn:
            return find_entries(
                keys,
                lambda ids: {
                    row["source_id"]: row["path"]
                    for row in conn.select_in(f"{columns} source_id IN ({{}})", ids, (source,))
                },
                lambda links: {
                    (row["source_url"], row["title"]): row["path"]
                    for row in conn.select_in(f"{columns} source_url IN ({{}})", links, (source,))
                },
            )

    def newest_source_post(self, source: str) -> float | None:
        """When the newest post of a source was published (a timestamp), or None if it has none."""
        with self.backend.reading() as conn:
            row = conn.execute(
                "SELECT max(published_ts) AS newest FROM posts WHERE source=?", (source,)
            ).fetchone()
        return float(row["newest"]) if row["newest"] is not None else None


@dataclass
class _Handoff:
    """Files one caller wrote, waiting for a thread of this process to index them."""

    files: list[PostFile]
    done: bool = False
    error: Exception | None = None


class _Wanted(NamedTuple):
    """What a published post wants to be known by, before any other post is looked at; its columns
    as stored from `title` on, its (category slug, tag) pairs, and the dates' timestamps (among the
    columns too) that its category rows repeat."""

    permalink: str
    entry_ids: list[str]
    columns: tuple[object, ...]
    categories: list[tuple[str, str | None]]
    published_ts: float
    updated_ts: float
    words: tuple[list[str], list[str]]  # the tokens of its title and of its text, for the search


class _Indexed(NamedTuple):
    """A file as the index keeps it, whichever way it came (read by a sync, or as its writer made
    it): its row of `files`, and what a published post wants."""

    path: str
    mtime_ns: int
    size: int
    digest: str
    status: FileStatus
    problem: str | None
    warnings: tuple[str, ...]
    wants: _Wanted | None  # a published post's


# Paths with their files as read; None where there is no post file (gone, or a folder).
_Read = list[tuple[str, _Indexed | None]]


def _indexed(file: PostFile, settings: IndexSettings) -> _Indexed:
    post = file.post
    return _Indexed(
        file.path,
        file.mtime_ns,
        file.size,
        file.digest,
        _status(file),
        file.problem,
        post.warnings if post else (),
        _post_wants(post, settings) if post and post.published else None,
    )


def _post_wants(post: Post, settings: IndexSettings) -> _Wanted:
    """What the post wants, and the columns of its rows that depend on it alone (not on the clock
    or other posts)."""
    updated = post.updated or post.date
    published_ts, updated_ts = post.date.timestamp(), updated.timestamp()
    columns = (
        post.title,
        post.date.isoformat(),
        published_ts,
        updated.isoformat(),
        updated_ts,
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
    slugs = category_slugs(post.categories)
    categories = [(slug, paired_tag(post, position)) for position, slug in enumerate(slugs)]
    permalink, entry_ids = wanted_permalink(post, settings), entry_id_candidates(post)
    words = post_tokens(post.title, searched_text(post.description, post.body))
    return _Wanted(permalink, entry_ids, columns, categories, published_ts, updated_ts, words)


def _read_files(settings: IndexSettings, paths: list[str]) -> _Read:
    """The files as read, as the index keeps them (also in a process of a sync's pool)."""
    root, tz = settings.posts_dir, settings.timezone
    read = ((path, read_post_file(root, path, tz) if _names_a_post(path) else None) for path in paths)
    return [(path, _indexed(file, settings) if file else None) for path, file in read]


def _names_a_post(path: str) -> bool:
    return is_post_file(path.rpartition("/")[2])


@dataclass
class _Storing:
    """A process of a sync's pool: its writer, and the turns it stores its batches in."""

    writer: IndexWriter
    turns: Turns


_storing: _Storing | None = None  # in a sync's pool, set as each process starts


def _start_storing(backend: Backend, settings: IndexSettings, now: float, turns: Turns) -> None:
    global _storing
    backend.write_in_bulk()
    # The sync's time for every batch: a post due meanwhile is published by the sync's last step.
    _storing = _Storing(IndexWriter(backend, settings, clock=lambda: now), turns)


def _read_and_store(number: int, paths: list[str]) -> SyncReport:
    """Batch `number` read here, then stored in its turn (in a process of a sync's pool)."""
    assert _storing is not None  # set by _start_storing
    read = _read_files(_storing.writer.settings, paths)
    with _storing.turns.turn(number):
        return _storing.writer._store_read(read)


def _free_permalink(holders: dict[str, str], path: str, wanted: str, warnings: list[str]) -> str:
    """`wanted`, or the post's variant of it when another post holds it; the one chosen is held."""
    holder = holders.get(wanted)
    chosen = wanted if holder is None else permalink_variant(wanted, path)
    if holder is not None:
        warnings.append(f"permalink {wanted} is taken by {holder}; this post is at {chosen}")
    holders[chosen] = path
    return chosen


def _free_entry_id(holders: dict[str, str], path: str, candidates: list[str], warnings: list[str]) -> str:
    """The first of the post's id candidates that no other post holds; the one chosen is held."""
    for candidate in candidates:
        holder = holders.get(candidate)
        if holder is None:
            holders[candidate] = path
            return candidate
        warnings.append(f"entry id {candidate} is taken by {holder}")
    raise AssertionError(f"{path}: no free entry id")  # the path-derived id is unique per path


def _holders(conn: Connection, column: str, values: set[str]) -> dict[str, str]:
    """Which stored post holds each of these permalinks or entry ids (`column`)."""
    rows = conn.select_in(
        f"SELECT {column} AS held, path FROM posts WHERE {column} IN ({{}})", sorted(values)
    )
    return {row["held"]: row["path"] for row in rows}


def _stored_fingerprint(conn: Connection) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key='fingerprint'").fetchone()
    return str(row["value"]) if row else None


def _categories_of(conn: Connection, paths: list[str]) -> set[str]:
    return {
        row["slug"]
        for row in conn.select_in("SELECT DISTINCT slug FROM post_categories WHERE path IN ({})", paths)
    }


def _status(file: PostFile) -> FileStatus:
    if file.post is None:
        return FileStatus.SKIPPED
    return FileStatus.POST if file.post.published else FileStatus.DRAFT


def _stamp(path: str) -> tuple[int, int] | None:
    """(mtime_ns, size) of what a read of `path` would read, None if nothing is there."""
    try:
        status = os.stat(path)  # not Path.stat: a turn checks every file it stores
    except OSError:
        return None
    return status.st_mtime_ns, status.st_size


def open_writer(config: Config, clock: Callable[[], float] = time.time) -> IndexWriter:
    """The write side of a configured site's index."""
    return IndexWriter(open_storage(config).index, IndexSettings.from_config(config), clock)
