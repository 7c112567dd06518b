"""What the aggregator remembers between polls, in ``aggregator.sqlite3`` in the data folder.

Per source: where the feed lives now, its HTTP validators, how the last poll went and
when to poll next. Per upstream entry: that it was seen, and which post it became.
Unlike the index, this is not derived from the post files, but losing it costs little:
the validators (one full download per feed), and the memory of entries that were seen
but never merged; merged entries are still found through the posts' front matter.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from feedhub.db import Database, run_script
from feedhub.errors import FeedhubError

STATE_FILE = "aggregator.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sources (
    id TEXT PRIMARY KEY,
    config_url TEXT NOT NULL,      -- the URL in sources.yaml this state belongs to
    current_url TEXT,              -- where permanent redirects lead; NULL: config_url
    etag TEXT,
    last_modified TEXT,
    feed_title TEXT,
    last_poll REAL,
    result TEXT,                   -- new | updated | unchanged | not-modified | error | gone
    reason TEXT,
    last_new INTEGER NOT NULL DEFAULT 0,
    last_updated INTEGER NOT NULL DEFAULT 0,
    merged_total INTEGER NOT NULL DEFAULT 0,
    last_merge REAL,
    errors INTEGER NOT NULL DEFAULT 0,
    next_poll REAL,
    gone INTEGER NOT NULL DEFAULT 0,
    polled INTEGER NOT NULL DEFAULT 0, -- 1 once a poll got the feed: backfill applies before
    resume_after REAL                  -- the state was lost: the first poll merges entries from then on
);
CREATE TABLE IF NOT EXISTS seen (
    source TEXT NOT NULL,
    identity TEXT NOT NULL,
    link TEXT,
    title TEXT NOT NULL,
    path TEXT,                     -- the post made of it; NULL when it was not merged
    digest TEXT,                   -- of the content that post shows
    first_seen REAL NOT NULL,
    PRIMARY KEY (source, identity)
);
CREATE INDEX IF NOT EXISTS seen_by_link ON seen (source, link, title);
"""
SCHEMA_VERSION = 2
# What each version adds to the one before (the state is not derived from anything: never dropped).
_MIGRATIONS = {2: "ALTER TABLE sources ADD COLUMN resume_after REAL"}


_SOURCE_COLUMNS = (
    "id",
    "config_url",
    "current_url",
    "etag",
    "last_modified",
    "feed_title",
    "last_poll",
    "result",
    "reason",
    "last_new",
    "last_updated",
    "merged_total",
    "last_merge",
    "errors",
    "next_poll",
    "gone",
    "polled",
    "resume_after",
)
_SELECT_SOURCE = f"SELECT {', '.join(_SOURCE_COLUMNS)} FROM sources"


@dataclass(frozen=True)
class Validators:
    """HTTP validators, stored exactly as the server sent them."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class SourceState:
    id: str
    config_url: str
    current_url: str | None
    validators: Validators
    feed_title: str | None
    last_poll: float | None
    result: str | None
    reason: str | None
    last_new: int
    last_updated: int
    merged_total: int
    last_merge: float | None
    errors: int
    next_poll: float | None
    gone: bool
    polled: bool
    # Set when this state was made for a source that already had posts (its state was lost or its
    # URL changed): the first poll merges only entries dated from then on, however often it is retried.
    resume_after: float | None

    @property
    def url(self) -> str:
        return self.current_url or self.config_url


@dataclass(frozen=True)
class Seen:
    identity: str
    path: str | None
    digest: str | None
    first_seen: float


class SeenEntry(NamedTuple):
    source: str
    identity: str
    link: str | None
    title: str
    path: str | None  # the post made of it; None when it was not merged
    digest: str | None
    first_seen: float
    old_identity: str | None = None  # the identity it was seen under before its id changed


@dataclass(frozen=True)
class Outcome:
    """How one poll went, to be recorded."""

    result: str
    reason: str | None = None
    new: int = 0
    updated: int = 0
    validators: Validators | None = None  # None: keep the stored ones
    moved_to: str | None = None
    feed_title: str | None = None


class StateStore:
    def __init__(self, data_dir: Path) -> None:
        self._db = Database(data_dir / STATE_FILE)
        self._conn = self._db.conn
        self._transaction = self._db.transaction
        with self._transaction() as conn:
            self._migrate(conn)

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Create the tables, or bring older ones up to this version (never drop what they hold)."""
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise FeedhubError(
                f"{self._db.path}: from a newer feedhub (schema {version}, this one reads {SCHEMA_VERSION})"
            )
        if version == 0:
            if conn.execute("SELECT 1 FROM sqlite_master WHERE name='sources'").fetchone():
                version = 1  # made before versions were recorded
            else:
                run_script(conn, _SCHEMA)
                version = SCHEMA_VERSION
        for step in range(version + 1, SCHEMA_VERSION + 1):
            conn.execute(_MIGRATIONS[step])
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    # ---- sources ----------------------------------------------------------------------

    def source(self, source_id: str, config_url: str, newest_post: Callable[[], float | None]) -> SourceState:
        """The state of a source; fresh when it is new or its configured URL changed.

        A fresh state of a source that has posts already (``newest_post``, asked only then)
        records when its newest post was published, in the same transaction: every retry of
        an interrupted first poll then decides alike.
        """
        with self._transaction() as conn:
            row = conn.execute(f"{_SELECT_SOURCE} WHERE id=?", (source_id,)).fetchone()
            if row is None or row[1] != config_url:
                # A new URL is a new feed: forget redirects, validators, errors and a 410.
                conn.execute("DELETE FROM sources WHERE id=?", (source_id,))
                conn.execute(
                    "INSERT INTO sources (id, config_url, resume_after) VALUES (?, ?, ?)",
                    (source_id, config_url, newest_post()),
                )
                row = conn.execute(f"{_SELECT_SOURCE} WHERE id=?", (source_id,)).fetchone()
        return _source_state(row)

    def all_sources(self) -> dict[str, SourceState]:
        return {row[0]: _source_state(row) for row in self._conn().execute(_SELECT_SOURCE)}

    def record(self, source_id: str, outcome: Outcome, now: float, next_poll: float | None) -> SourceState:
        """Store how a poll went; errors count up until a poll succeeds."""
        failed = outcome.result in ("error", "gone")
        with self._transaction() as conn:
            conn.execute(
                """
                UPDATE sources SET
                    last_poll=?, result=?, reason=?, next_poll=?,
                    last_new=?, last_updated=?,
                    merged_total=merged_total + ?,
                    last_merge=CASE WHEN ? > 0 THEN ? ELSE last_merge END,
                    errors=CASE WHEN ? THEN errors + 1 ELSE 0 END,
                    gone=?,
                    polled=CASE WHEN ? THEN polled ELSE 1 END,
                    current_url=COALESCE(?, current_url),
                    etag=CASE WHEN ? THEN ? ELSE etag END,
                    last_modified=CASE WHEN ? THEN ? ELSE last_modified END,
                    feed_title=COALESCE(?, feed_title)
                WHERE id=?
                """,
                (
                    now,
                    outcome.result,
                    outcome.reason,
                    next_poll,
                    outcome.new,
                    outcome.updated,
                    outcome.new + outcome.updated,
                    outcome.new + outcome.updated,
                    now,
                    failed,
                    outcome.result == "gone",
                    failed,
                    outcome.moved_to,
                    outcome.validators is not None,
                    outcome.validators.etag if outcome.validators else None,
                    outcome.validators is not None,
                    outcome.validators.last_modified if outcome.validators else None,
                    outcome.feed_title,
                    source_id,
                ),
            )
            row = conn.execute(f"{_SELECT_SOURCE} WHERE id=?", (source_id,)).fetchone()
        return _source_state(row)

    def enable(self, source_id: str, now: float) -> bool:
        """Clear a 410 and the error count, and poll soon; False for an unknown source."""
        with self._transaction() as conn:
            changed = conn.execute(
                "UPDATE sources SET gone=0, errors=0, next_poll=?, result=NULL, reason=NULL WHERE id=?",
                (now, source_id),
            ).rowcount
        return bool(changed)

    # ---- entries ----------------------------------------------------------------------

    def find_seen(self, source_id: str, identity: str, link: str | None, title: str) -> Seen | None:
        """An entry seen before: by identity, or by link and title (an entry whose id changed)."""
        conn = self._conn()
        row = conn.execute(
            "SELECT identity, path, digest, first_seen FROM seen WHERE source=? AND identity=?",
            (source_id, identity),
        ).fetchone()
        if row is None and link:
            row = conn.execute(
                "SELECT identity, path, digest, first_seen FROM seen WHERE source=? AND link=? AND title=?",
                (source_id, link, title),
            ).fetchone()
        return Seen(*row) if row else None

    def remember(self, records: list[SeenEntry]) -> None:
        """Record entries as seen, in one transaction (under a new identity when the id changed)."""
        if not records:
            return
        with self._transaction() as conn:
            for record in records:
                if record.old_identity and record.old_identity != record.identity:
                    conn.execute(
                        "DELETE FROM seen WHERE source=? AND identity=?", (record.source, record.old_identity)
                    )
            conn.executemany(
                "INSERT INTO seen VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source, identity) DO UPDATE SET "
                "link=excluded.link, title=excluded.title, path=excluded.path, digest=excluded.digest",
                [record[:7] for record in records],
            )


def _source_state(row: tuple[Any, ...]) -> SourceState:
    values = dict(zip(_SOURCE_COLUMNS, row, strict=True))
    validators = Validators(values.pop("etag"), values.pop("last_modified"))
    gone, polled = bool(values.pop("gone")), bool(values.pop("polled"))
    return SourceState(validators=validators, gone=gone, polled=polled, **values)
