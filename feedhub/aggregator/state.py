"""What the aggregator remembers between polls: in ``aggregator.sqlite3`` in the data folder, or
in the shared PostgreSQL database.

Per source: where the feed lives now, its HTTP validators, how the last poll went and
when to poll next. Per upstream entry: that it was seen, and which post it became.
Unlike the index, this is not derived from the post files, but losing it costs little:
the validators (one full download per feed), and the memory of entries that were seen
but never merged; merged entries are still found through the posts' front matter. Its
tables are migrated, never dropped. Sources are leased to one poller at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

from feedhub.index.identity import EntryKey, find_entries
from feedhub.storage.base import Backend, Connection, Row
from feedhub.storage.schema import Schema, migrate

_TABLES = """
CREATE TABLE sources (
    id TEXT PRIMARY KEY,
    config_url TEXT NOT NULL,      -- the URL in sources.yaml this state belongs to
    current_url TEXT,              -- where permanent redirects lead; NULL: config_url
    etag TEXT,
    last_modified TEXT,
    feed_title TEXT,
    last_poll DOUBLE PRECISION,
    result TEXT,                   -- a PollResult
    reason TEXT,
    last_new BIGINT NOT NULL DEFAULT 0,
    last_updated BIGINT NOT NULL DEFAULT 0,
    merged_total BIGINT NOT NULL DEFAULT 0,
    last_merge DOUBLE PRECISION,
    errors BIGINT NOT NULL DEFAULT 0,
    next_poll DOUBLE PRECISION,
    gone BIGINT NOT NULL DEFAULT 0,
    polled BIGINT NOT NULL DEFAULT 0,  -- 1 once a poll got the feed: backfill applies before
    resume_after DOUBLE PRECISION,     -- the state was lost: the first poll merges entries from then on
    lease_owner TEXT,                  -- the poller polling it now, until lease_until
    lease_until DOUBLE PRECISION,
    fetched_url TEXT,                  -- where its last fetch ended, after every redirect (compared)
    feed_image TEXT,                   -- the icon or logo the feed names, as its last parse found
    feed_description TEXT
);
CREATE TABLE seen (
    source TEXT NOT NULL,
    identity TEXT NOT NULL,
    link TEXT,
    title TEXT NOT NULL,
    path TEXT,                     -- the post made of it; NULL when it was not merged
    digest TEXT,                   -- of the content that post shows; NULL: claimed, not yet written
    first_seen DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (source, identity)
);
CREATE INDEX seen_by_link ON seen (source, link, title);
CREATE TABLE pollers (
    owner TEXT PRIMARY KEY,        -- host:pid:start of a running scheduler
    seen DOUBLE PRECISION NOT NULL -- its last sign of life
);
CREATE TABLE stories (
    category TEXT NOT NULL,
    story TEXT NOT NULL,           -- link:<canonical link> or text:<hash> (feedhub.aggregator.stories)
    source TEXT NOT NULL,          -- the source whose post tells it
    path TEXT NOT NULL,
    PRIMARY KEY (category, story)
)
"""


def _legacy_version(conn: Connection) -> int:
    """A state file of feedhub before schema versions: its user_version (1 when made before that)."""
    version = int(conn.execute("PRAGMA user_version").fetchone()["user_version"])
    if version == 0 and conn.execute("SELECT 1 FROM sqlite_master WHERE name='sources'").fetchone():
        return 1
    return version


STATE_SCHEMA = Schema(
    part="aggregator",
    version=5,
    tables=_TABLES,
    # What each version adds to the one before (the state is not derived from anything: never dropped).
    steps={
        2: "ALTER TABLE sources ADD COLUMN resume_after DOUBLE PRECISION",
        3: "ALTER TABLE sources ADD COLUMN lease_owner TEXT;\n"
        "ALTER TABLE sources ADD COLUMN lease_until DOUBLE PRECISION;\n"
        "CREATE TABLE pollers (owner TEXT PRIMARY KEY, seen DOUBLE PRECISION NOT NULL)",
        4: "ALTER TABLE sources ADD COLUMN fetched_url TEXT;\n"
        "CREATE TABLE stories (category TEXT NOT NULL, story TEXT NOT NULL, source TEXT NOT NULL, "
        "path TEXT NOT NULL, PRIMARY KEY (category, story))",
        5: "ALTER TABLE sources ADD COLUMN feed_image TEXT;\n"
        "ALTER TABLE sources ADD COLUMN feed_description TEXT",
    },
    legacy_version=_legacy_version,
)


DUE_TOLERANCE = 1.0  # a job may fire this early (timer rounding) and still find its source due


class PollResult(Enum):
    NEW = "new"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    NOT_MODIFIED = "not-modified"
    ERROR = "error"
    GONE = "gone"  # 410: not polled again until `feedhub enable`

    @property
    def failed(self) -> bool:
        return self in (PollResult.ERROR, PollResult.GONE)


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
    "feed_image",
    "feed_description",
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
    result: PollResult | None
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
    feed_image: str | None = None
    feed_description: str | None = None

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

    result: PollResult
    reason: str | None = None
    new: int = 0
    updated: int = 0
    validators: Validators | None = None  # None: keep the stored ones
    moved_to: str | None = None
    feed_title: str | None = None
    fetched_url: str | None = None  # comparable, after every redirect; None: keep the stored one
    # What the feed says of itself, (image, description), when it was parsed; None: keep the stored.
    feed_look: tuple[str | None, str | None] | None = None


class StateStore:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        migrate(backend, STATE_SCHEMA)

    # ---- sources ----------------------------------------------------------------------

    def source(self, source_id: str, config_url: str, newest_post: Callable[[], float | None]) -> SourceState:
        """The state of a source; fresh when it is new or its configured URL changed.

        A fresh state of a source that has posts already (``newest_post``, asked only then)
        records when its newest post was published, in the same transaction: every retry of
        an interrupted first poll then decides alike.
        """
        with self.backend.transaction() as conn:
            row = conn.execute(f"{_SELECT_SOURCE} WHERE id=?", (source_id,)).fetchone()
            if row is None or row["config_url"] != config_url:
                # A new URL is a new feed: forget redirects, validators, errors and a 410.
                conn.execute("DELETE FROM sources WHERE id=?", (source_id,))
                conn.execute(
                    "INSERT INTO sources (id, config_url, resume_after) VALUES (?, ?, ?)",
                    (source_id, config_url, newest_post()),
                )
                row = conn.execute(f"{_SELECT_SOURCE} WHERE id=?", (source_id,)).fetchone()
        return _source_state(row)

    def all_sources(self) -> dict[str, SourceState]:
        with self.backend.reading() as conn:
            return {row["id"]: _source_state(row) for row in conn.execute(_SELECT_SOURCE).fetchall()}

    def record(self, source_id: str, outcome: Outcome, now: float, next_poll: float | None) -> SourceState:
        """Store how a poll went, and give back its lease; errors count up until a poll succeeds."""
        failed = outcome.result.failed
        merged = outcome.new + outcome.updated
        validators, look = outcome.validators, outcome.feed_look
        with self.backend.transaction() as conn:
            conn.execute(
                """
                UPDATE sources SET
                    last_poll=?, result=?, reason=?, next_poll=?,
                    last_new=?, last_updated=?,
                    merged_total=merged_total + ?,
                    last_merge=CASE WHEN ? THEN ? ELSE last_merge END,
                    errors=CASE WHEN ? THEN errors + 1 ELSE 0 END,
                    gone=?,
                    polled=CASE WHEN ? THEN polled ELSE 1 END,
                    current_url=COALESCE(?, current_url),
                    etag=CASE WHEN ? THEN ? ELSE etag END,
                    last_modified=CASE WHEN ? THEN ? ELSE last_modified END,
                    feed_title=COALESCE(?, feed_title),
                    fetched_url=COALESCE(?, fetched_url),
                    feed_image=CASE WHEN ? THEN ? ELSE feed_image END,
                    feed_description=CASE WHEN ? THEN ? ELSE feed_description END,
                    lease_owner=NULL, lease_until=NULL
                WHERE id=?
                """,
                (
                    now,
                    outcome.result.value,
                    outcome.reason,
                    next_poll,
                    outcome.new,
                    outcome.updated,
                    merged,
                    merged > 0,
                    now,
                    failed,
                    int(outcome.result is PollResult.GONE),
                    failed,
                    outcome.moved_to,
                    validators is not None,
                    validators.etag if validators else None,
                    validators is not None,
                    validators.last_modified if validators else None,
                    outcome.feed_title,
                    outcome.fetched_url,
                    look is not None,
                    look[0] if look else None,
                    look is not None,
                    look[1] if look else None,
                    source_id,
                ),
            )
            row = conn.execute(f"{_SELECT_SOURCE} WHERE id=?", (source_id,)).fetchone()
        return _source_state(row)

    def enable(self, source_id: str, now: float) -> bool:
        """Clear a 410 and the error count, and poll soon; False for an unknown source."""
        with self.backend.transaction() as conn:
            changed = conn.execute(
                "UPDATE sources SET gone=0, errors=0, next_poll=?, result=NULL, reason=NULL WHERE id=?",
                (now, source_id),
            ).rowcount
        return bool(changed)

    # ---- leases: one poller polls a source at a time, whatever the number of hosts -------------

    def lease(
        self,
        source_id: str,
        owner: str,
        now: float,
        seconds: float,
        due_only: bool = False,
        holder_dead: Callable[[str], bool] = lambda _holder: False,
    ) -> float | None:
        """Take the source for `seconds` if no other poller holds it (and, with `due_only`, if its
        next poll has come): None when taken; else when to ask again (the end of another poller's
        lease, or the next poll another poller set). A lease whose holder is known to be dead
        (`holder_dead`: a process of this host that is gone) is taken at once.

        The row is locked while deciding (FOR UPDATE in PostgreSQL; SQLite's writers take turns),
        and SKIP LOCKED lets a poller that finds it locked move on instead of waiting.
        """
        with self.backend.transaction() as conn:
            row = conn.execute(
                "SELECT next_poll, lease_owner, lease_until FROM sources "
                f"WHERE id=?{self.backend.skip_locked}",
                (source_id,),
            ).fetchone()
            if row is None:
                return now + seconds  # another poller is deciding about it right now
            holder = row["lease_owner"]
            held = holder not in (None, owner) and (row["lease_until"] or 0) > now and not holder_dead(holder)
            if held:
                return float(row["lease_until"])
            if due_only and row["next_poll"] is not None and row["next_poll"] > now + DUE_TOLERANCE:
                return float(row["next_poll"])  # polled by another poller since this one's job was set
            conn.execute(
                "UPDATE sources SET lease_owner=?, lease_until=? WHERE id=?",
                (owner, now + seconds, source_id),
            )
        return None

    def renew(self, source_ids: list[str], owner: str, until: float) -> None:
        """Extend this poller's leases of these sources (a poll still running)."""
        with self.backend.transaction() as conn:
            conn.executemany(
                "UPDATE sources SET lease_until=? WHERE id=? AND lease_owner=?",
                [(until, source_id, owner) for source_id in source_ids],
            )

    def release(self, source_id: str, owner: str) -> None:
        """Give a lease back without recording a poll (the poll could not even be recorded)."""
        with self.backend.transaction() as conn:
            conn.execute(
                "UPDATE sources SET lease_owner=NULL, lease_until=NULL WHERE id=? AND lease_owner=?",
                (source_id, owner),
            )

    def heartbeat(self, owner: str, now: float) -> None:
        """Say that the scheduler `owner` runs (health checks on every host read it)."""
        with self.backend.transaction() as conn:
            conn.execute(
                "INSERT INTO pollers VALUES (?, ?) ON CONFLICT (owner) DO UPDATE SET seen=excluded.seen",
                (owner, now),
            )

    def pollers_seen_since(self, since: float) -> int:
        """How many schedulers gave a sign of life since then."""
        with self.backend.reading() as conn:
            return int(
                conn.execute("SELECT count(*) AS n FROM pollers WHERE seen >= ?", (since,)).fetchone()["n"]
            )

    def stopped(self, owner: str) -> None:
        with self.backend.transaction() as conn:
            conn.execute("DELETE FROM pollers WHERE owner=?", (owner,))

    # ---- entries ----------------------------------------------------------------------

    def find_seen(self, source_id: str, keys: Sequence[EntryKey]) -> dict[str, Seen]:
        """The entries seen before among these, by the identity asked for."""
        columns = "SELECT identity, link, title, path, digest, first_seen FROM seen WHERE source=? AND"
        with self.backend.reading() as conn:
            return find_entries(
                keys,
                lambda identities: {
                    row["identity"]: _seen(row)
                    for row in conn.select_in(f"{columns} identity IN ({{}})", identities, (source_id,))
                },
                lambda links: {
                    (row["link"], row["title"]): _seen(row)
                    for row in conn.select_in(f"{columns} link IN ({{}})", links, (source_id,))
                },
            )

    def claim(self, records: Sequence[SeenEntry]) -> dict[str, str | None]:
        """The file each new upstream entry becomes (by identity): the one in its record, unless
        another poller claimed the entry first (then that one's; None if it chose not to merge
        it). The primary key decides, not a check before the insert, so an entry becomes one post
        whatever the race; a claim has no digest until `remember` records what was written."""
        if not records:
            return {}
        source_id = records[0].source
        with self.backend.transaction() as conn:
            conn.insert_rows(
                "INSERT INTO seen VALUES {} ON CONFLICT (source, identity) DO NOTHING",
                [
                    (
                        record.source,
                        record.identity,
                        record.link,
                        record.title,
                        record.path,
                        None,  # the digest, recorded by `remember`
                        record.first_seen,
                    )
                    for record in records
                ],
            )
            claimed = conn.select_in(
                "SELECT identity, path FROM seen WHERE source=? AND identity IN ({})",
                [record.identity for record in records],
                (source_id,),
            )
            return {row["identity"]: row["path"] for row in claimed}

    def others_fetching(self, source_id: str, fetched_url: str) -> list[str]:
        """The other sources whose last fetch ended at this (comparable) URL."""
        with self.backend.reading() as conn:
            rows = conn.execute(
                "SELECT id FROM sources WHERE fetched_url=? AND id<>? ORDER BY id", (fetched_url, source_id)
            )
            return [row["id"] for row in rows]

    def find_stories(self, category: str, keys: Sequence[str]) -> dict[str, tuple[str, str]]:
        """Which source's post already tells each story key in this category: (source, path)."""
        with self.backend.reading() as conn:
            rows = conn.select_in(
                "SELECT story, source, path FROM stories WHERE category=? AND story IN ({})",
                list(dict.fromkeys(keys)),
                (category,),
            )
            return {row["story"]: (row["source"], row["path"]) for row in rows}

    def tell_stories(self, category: str, source_id: str, told: Sequence[tuple[str, str]]) -> None:
        """Record (story key, path) of posts written; a key told first by another source stays its."""
        if not told:
            return
        with self.backend.transaction() as conn:
            conn.insert_rows(
                "INSERT INTO stories VALUES {} ON CONFLICT (category, story) DO NOTHING",
                list({key: (category, key, source_id, path) for key, path in told}.values()),
            )

    def remember(self, records: list[SeenEntry]) -> None:
        """Record entries as seen, in one transaction (under a new identity when the id changed)."""
        if not records:
            return
        with self.backend.transaction() as conn:
            for record in records:
                if record.old_identity and record.old_identity != record.identity:
                    conn.execute(
                        "DELETE FROM seen WHERE source=? AND identity=?", (record.source, record.old_identity)
                    )
            latest = {(record.source, record.identity): record[:7] for record in records}  # one row each
            conn.insert_rows(
                "INSERT INTO seen VALUES {} ON CONFLICT (source, identity) DO UPDATE SET "
                "link=excluded.link, title=excluded.title, path=excluded.path, digest=excluded.digest",
                list(latest.values()),
            )


def _seen(row: Row) -> Seen:
    return Seen(row["identity"], row["path"], row["digest"], row["first_seen"])


def _source_state(row: Row) -> SourceState:
    return SourceState(
        id=row["id"],
        config_url=row["config_url"],
        current_url=row["current_url"],
        validators=Validators(row["etag"], row["last_modified"]),
        feed_title=row["feed_title"],
        last_poll=row["last_poll"],
        result=PollResult(row["result"]) if row["result"] else None,
        reason=row["reason"],
        last_new=int(row["last_new"]),
        last_updated=int(row["last_updated"]),
        merged_total=int(row["merged_total"]),
        last_merge=row["last_merge"],
        errors=int(row["errors"]),
        next_poll=row["next_poll"],
        gone=bool(row["gone"]),
        polled=bool(row["polled"]),
        resume_after=row["resume_after"],
        feed_image=row["feed_image"],
        feed_description=row["feed_description"],
    )
