"""What the built-in hub keeps: subscription requests waiting for verification, subscriptions,
pending deliveries, outside-hub pings, and what each topic last was.

It lives with the aggregator's state (a SQLite file in the data folder, or the shared
PostgreSQL database), migrated and never dropped: subscriptions survive restarts and upgrades.
Web workers only add requests; the one hub worker (the scheduler's process, or the poller
holding the hub's lead on PostgreSQL) does everything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from urllib.parse import urlsplit

from feedhub.storage.base import Backend, Row
from feedhub.storage.schema import Schema, migrate
from feedhub.websub.topics import Topic

_TABLES = """
CREATE TABLE websub_requests (
    id TEXT PRIMARY KEY,
    received DOUBLE PRECISION NOT NULL,
    intent TEXT NOT NULL,             -- an Intent
    topic TEXT NOT NULL,              -- as the subscriber wrote it
    feed TEXT,                        -- the Topic's key; NULL: not one of this site's feeds
    callback TEXT NOT NULL,
    secret TEXT,
    lease_seconds BIGINT,
    reason TEXT                       -- why it is denied
);
CREATE TABLE websub_subscriptions (
    topic TEXT NOT NULL,
    callback TEXT NOT NULL,
    feed TEXT NOT NULL,
    callback_host TEXT NOT NULL,
    secret TEXT,
    lease_seconds BIGINT NOT NULL,
    expires DOUBLE PRECISION NOT NULL,
    verified DOUBLE PRECISION NOT NULL,
    delivered DOUBLE PRECISION,       -- the last delivery the callback took
    failures BIGINT NOT NULL DEFAULT 0,  -- deliveries failed in a row
    failing_since DOUBLE PRECISION,
    last_error TEXT,
    PRIMARY KEY (topic, callback)
);
CREATE INDEX websub_subscriptions_by_feed ON websub_subscriptions (feed);
CREATE INDEX websub_subscriptions_by_host ON websub_subscriptions (callback_host);
CREATE TABLE websub_deliveries (
    topic TEXT NOT NULL,
    callback TEXT NOT NULL,
    due DOUBLE PRECISION NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    first_due DOUBLE PRECISION NOT NULL,  -- retries end a bounded time after this
    PRIMARY KEY (topic, callback)
);
CREATE INDEX websub_deliveries_by_due ON websub_deliveries (due);
CREATE TABLE websub_pings (
    hub TEXT NOT NULL,
    topic TEXT NOT NULL,
    due DOUBLE PRECISION NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    first_due DOUBLE PRECISION NOT NULL,
    last_error TEXT,
    PRIMARY KEY (hub, topic)
);
CREATE TABLE websub_published (
    feed TEXT PRIMARY KEY,
    digest TEXT NOT NULL,             -- of the bytes last published
    published DOUBLE PRECISION NOT NULL
);
CREATE TABLE websub_marks (
    name TEXT PRIMARY KEY,            -- 'index': the index changes the hub has looked at
    instance TEXT NOT NULL,
    version BIGINT NOT NULL
);
CREATE TABLE websub_upstream (
    source TEXT PRIMARY KEY,          -- a source of sources.yaml whose feed names a hub
    hub TEXT NOT NULL,
    topic TEXT NOT NULL,
    callback_id TEXT NOT NULL UNIQUE, -- <base_url>/websub/callback/<callback_id>
    secret TEXT NOT NULL,
    private_ok BIGINT NOT NULL DEFAULT 0,  -- the source allows a hub on a private address
    state TEXT NOT NULL,              -- a PushState
    lease_until DOUBLE PRECISION,     -- while subscribed
    next_request DOUBLE PRECISION,    -- when to ask the hub (again); NULL: nothing to ask
    attempts BIGINT NOT NULL DEFAULT 0,
    reason TEXT,
    last_push DOUBLE PRECISION
);
CREATE TABLE websub_inbox (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    received DOUBLE PRECISION NOT NULL,
    content_type TEXT,
    body BYTEA NOT NULL
)
"""

WEBSUB_SCHEMA = Schema(part="websub", version=1, tables=_TABLES)


class Intent(Enum):
    SUBSCRIBE = "subscribe"
    UNSUBSCRIBE = "unsubscribe"
    DENY = "denied"  # a request the hub refuses: the callback is told so (hub.mode=denied)


@dataclass(frozen=True)
class HubRequest:
    id: str
    received: float
    intent: Intent
    topic: str
    feed: Topic | None
    callback: str
    secret: str | None
    lease_seconds: int | None
    reason: str | None


@dataclass(frozen=True)
class Subscription:
    topic: str
    callback: str
    feed: Topic
    secret: str | None
    lease_seconds: int
    expires: float
    failures: int
    last_error: str | None


@dataclass(frozen=True)
class Delivery:
    subscription: Subscription
    attempts: int
    first_due: float


@dataclass(frozen=True)
class Ping:
    hub: str
    topic: str
    attempts: int
    first_due: float


@dataclass(frozen=True)
class TopicCount:
    topic: str
    subscriptions: int


@dataclass(frozen=True)
class FailingCallback:
    topic: str
    callback: str
    failures: int
    failing_since: float | None
    last_error: str | None


def callback_host(callback: str) -> str:
    """What the per-host limit counts by."""
    return (urlsplit(callback).hostname or "").lower()


class HubStore:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        migrate(backend, WEBSUB_SCHEMA)

    # ---- requests (added by web workers) -------------------------------------------------------

    def add_request(self, request: HubRequest) -> None:
        with self.backend.transaction() as conn:
            conn.execute(
                "INSERT INTO websub_requests VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    request.id,
                    request.received,
                    request.intent.value,
                    request.topic,
                    _key(request.feed),
                    request.callback,
                    request.secret,
                    request.lease_seconds,
                    request.reason,
                ),
            )

    def waiting_requests(self) -> int:
        with self.backend.reading() as conn:
            return int(conn.execute("SELECT count(*) AS n FROM websub_requests").fetchone()["n"])

    def take_requests(self, limit: int) -> list[HubRequest]:
        """The oldest requests, removed as they are taken (each is verified once, by one worker)."""
        with self.backend.transaction() as conn:
            rows = conn.execute(
                "SELECT * FROM websub_requests ORDER BY received, id LIMIT ?" + self.backend.skip_locked,
                (limit,),
            ).fetchall()
            conn.executemany("DELETE FROM websub_requests WHERE id=?", [(row["id"],) for row in rows])
        return [_request(row) for row in rows]

    # ---- subscriptions ------------------------------------------------------------------------

    def counts_for(self, topic: str, callback: str) -> tuple[int, int, bool]:
        """(subscriptions to this topic, subscriptions to callbacks on this callback's host,
        whether this very subscription exists): what the limits are checked against."""
        with self.backend.reading() as conn:
            per_topic = conn.execute(
                "SELECT count(*) AS n FROM websub_subscriptions WHERE topic=?", (topic,)
            ).fetchone()["n"]
            per_host = conn.execute(
                "SELECT count(*) AS n FROM websub_subscriptions WHERE callback_host=?",
                (callback_host(callback),),
            ).fetchone()["n"]
            exists = conn.execute(
                "SELECT 1 FROM websub_subscriptions WHERE topic=? AND callback=?", (topic, callback)
            ).fetchone()
        return int(per_topic), int(per_host), exists is not None

    def activate(self, request: HubRequest, lease_seconds: int, now: float) -> None:
        """A verified subscription, new or renewed: its lease starts now, its secret is the new one."""
        assert request.feed is not None
        with self.backend.transaction() as conn:
            conn.execute(
                "INSERT INTO websub_subscriptions (topic, callback, feed, callback_host, secret, "
                "lease_seconds, expires, verified) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (topic, callback) DO UPDATE SET secret=excluded.secret, "
                "lease_seconds=excluded.lease_seconds, expires=excluded.expires, verified=excluded.verified",
                (
                    request.topic,
                    request.callback,
                    _key(request.feed),
                    callback_host(request.callback),
                    request.secret,
                    lease_seconds,
                    now + lease_seconds,
                    now,
                ),
            )

    def remove(self, topic: str, callback: str) -> bool:
        with self.backend.transaction() as conn:
            conn.execute("DELETE FROM websub_deliveries WHERE topic=? AND callback=?", (topic, callback))
            removed = conn.execute(
                "DELETE FROM websub_subscriptions WHERE topic=? AND callback=?", (topic, callback)
            ).rowcount
        return bool(removed)

    def expire(self, now: float) -> list[Subscription]:
        """Remove the subscriptions whose lease has ended; the ones removed."""
        with self.backend.transaction() as conn:
            rows = conn.execute("SELECT * FROM websub_subscriptions WHERE expires <= ?", (now,)).fetchall()
            for row in rows:
                conn.execute(
                    "DELETE FROM websub_deliveries WHERE topic=? AND callback=?",
                    (row["topic"], row["callback"]),
                )
            conn.execute("DELETE FROM websub_subscriptions WHERE expires <= ?", (now,))
        return [_subscription(row) for row in rows]

    def subscribed_feeds(self, now: float) -> set[Topic]:
        with self.backend.reading() as conn:
            rows = conn.execute(
                "SELECT DISTINCT feed FROM websub_subscriptions WHERE expires > ?", (now,)
            ).fetchall()
        return {_topic(row["feed"]) for row in rows}

    def subscription(self, topic: str, callback: str) -> Subscription | None:
        with self.backend.reading() as conn:
            row = conn.execute(
                "SELECT * FROM websub_subscriptions WHERE topic=? AND callback=?", (topic, callback)
            ).fetchone()
        return _subscription(row) if row else None

    # ---- what each topic was, and what changed ------------------------------------------------

    def mark(self) -> tuple[str, int] | None:
        """(index instance, version) of the index changes already looked at."""
        with self.backend.reading() as conn:
            row = conn.execute("SELECT instance, version FROM websub_marks WHERE name='index'").fetchone()
        return (row["instance"], int(row["version"])) if row else None

    def set_mark(self, instance: str, version: int) -> None:
        with self.backend.transaction() as conn:
            conn.execute(
                "INSERT INTO websub_marks VALUES ('index', ?, ?) ON CONFLICT (name) DO UPDATE SET "
                "instance=excluded.instance, version=excluded.version",
                (instance, version),
            )

    def publish(
        self, feed: Topic, digest: str, hubs: tuple[str, ...], topic_urls: list[str], now: float
    ) -> bool:
        """Record the topic's new bytes; if they differ from the last published, queue a delivery
        to every live subscription of it and a ping to every outside hub. Whether they differed."""
        key = _key(feed)
        with self.backend.transaction() as conn:
            row = conn.execute("SELECT digest FROM websub_published WHERE feed=?", (key,)).fetchone()
            if row is not None and row["digest"] == digest:
                return False
            conn.execute(
                "INSERT INTO websub_published VALUES (?, ?, ?) ON CONFLICT (feed) DO UPDATE SET "
                "digest=excluded.digest, published=excluded.published",
                (key, digest, now),
            )
            # A delivery still waiting (a failing callback in backoff) keeps its schedule: it sends
            # whatever the topic is when it goes.
            conn.execute(
                "INSERT INTO websub_deliveries (topic, callback, due, first_due) "
                "SELECT topic, callback, ?, ? FROM websub_subscriptions WHERE feed=? AND expires > ? "
                "ON CONFLICT (topic, callback) DO NOTHING",
                (now, now, key, now),
            )
            conn.insert_rows(
                "INSERT INTO websub_pings (hub, topic, due, first_due) VALUES {} "
                "ON CONFLICT (hub, topic) DO NOTHING",
                [(hub, url, now, now) for hub in hubs for url in topic_urls],
            )
        return True

    # ---- deliveries ---------------------------------------------------------------------------

    def due_deliveries(self, now: float, limit: int, busy: set[tuple[str, str]]) -> list[Delivery]:
        with self.backend.reading() as conn:
            rows = conn.execute(
                "SELECT d.attempts AS attempts, d.first_due AS first_due, s.* FROM websub_deliveries d "
                "JOIN websub_subscriptions s ON s.topic=d.topic AND s.callback=d.callback "
                "WHERE d.due <= ? AND s.expires > ? ORDER BY d.due LIMIT ?",
                (now, now, limit + len(busy)),
            ).fetchall()
        found = [
            Delivery(_subscription(row), int(row["attempts"]), float(row["first_due"]))
            for row in rows
            if (row["topic"], row["callback"]) not in busy
        ]
        return found[:limit]

    def delivered(self, subscription: Subscription, now: float) -> None:
        with self.backend.transaction() as conn:
            conn.execute(
                "DELETE FROM websub_deliveries WHERE topic=? AND callback=?",
                (subscription.topic, subscription.callback),
            )
            conn.execute(
                "UPDATE websub_subscriptions SET delivered=?, failures=0, failing_since=NULL, "
                "last_error=NULL WHERE topic=? AND callback=?",
                (now, subscription.topic, subscription.callback),
            )

    def delivery_failed(self, delivery: Delivery, error: str, retry_at: float | None, now: float) -> None:
        """A failed attempt: tried again at `retry_at`, or (None) dropped."""
        subscription = delivery.subscription
        with self.backend.transaction() as conn:
            if retry_at is None:
                conn.execute(
                    "DELETE FROM websub_deliveries WHERE topic=? AND callback=?",
                    (subscription.topic, subscription.callback),
                )
            else:
                conn.execute(
                    "UPDATE websub_deliveries SET due=?, attempts=attempts + 1 WHERE topic=? AND callback=?",
                    (retry_at, subscription.topic, subscription.callback),
                )
            conn.execute(
                "UPDATE websub_subscriptions SET failures=failures + 1, last_error=?, "
                "failing_since=COALESCE(failing_since, ?) WHERE topic=? AND callback=?",
                (error, now, subscription.topic, subscription.callback),
            )

    # ---- pings to outside hubs ----------------------------------------------------------------

    def due_pings(self, now: float, limit: int, busy: set[tuple[str, str]]) -> list[Ping]:
        with self.backend.reading() as conn:
            rows = conn.execute(
                "SELECT * FROM websub_pings WHERE due <= ? ORDER BY due LIMIT ?", (now, limit + len(busy))
            ).fetchall()
        pings = [
            Ping(row["hub"], row["topic"], int(row["attempts"]), float(row["first_due"]))
            for row in rows
            if (row["hub"], row["topic"]) not in busy
        ]
        return pings[:limit]

    def ping_done(self, ping: Ping, error: str | None, retry_at: float | None) -> None:
        """A ping answered (error None), or failed: tried again at `retry_at`, or dropped."""
        with self.backend.transaction() as conn:
            if error is None or retry_at is None:
                conn.execute("DELETE FROM websub_pings WHERE hub=? AND topic=?", (ping.hub, ping.topic))
            else:
                conn.execute(
                    "UPDATE websub_pings SET due=?, attempts=attempts + 1, last_error=? "
                    "WHERE hub=? AND topic=?",
                    (retry_at, error, ping.hub, ping.topic),
                )

    # ---- for /status --------------------------------------------------------------------------

    def topic_counts(self, now: float) -> list[TopicCount]:
        with self.backend.reading() as conn:
            rows = conn.execute(
                "SELECT topic, count(*) AS n FROM websub_subscriptions WHERE expires > ? "
                "GROUP BY topic ORDER BY count(*) DESC, topic",
                (now,),
            ).fetchall()
        return [TopicCount(row["topic"], int(row["n"])) for row in rows]

    def failing(self, limit: int) -> list[FailingCallback]:
        with self.backend.reading() as conn:
            rows = conn.execute(
                "SELECT topic, callback, failures, failing_since, last_error FROM websub_subscriptions "
                "WHERE failures > 0 ORDER BY failures DESC, topic, callback LIMIT ?",
                (limit,),
            ).fetchall()
        return [
            FailingCallback(
                row["topic"], row["callback"], int(row["failures"]), row["failing_since"], row["last_error"]
            )
            for row in rows
        ]


def _key(feed: Topic | None) -> str | None:
    """A Topic as stored: ``atom:`` for the site's Atom feed, ``rss:emnews`` for a category's RSS."""
    return None if feed is None else f"{feed.fmt}:{feed.slug if feed.slug is not None else ''}"


def _topic(key: str) -> Topic:
    fmt, _, slug = key.partition(":")
    return Topic(slug if slug else None, fmt)


def _request(row: Row) -> HubRequest:
    return HubRequest(
        id=row["id"],
        received=float(row["received"]),
        intent=Intent(row["intent"]),
        topic=row["topic"],
        feed=_topic(row["feed"]) if row["feed"] else None,
        callback=row["callback"],
        secret=row["secret"],
        lease_seconds=row["lease_seconds"],
        reason=row["reason"],
    )


def _subscription(row: Row) -> Subscription:
    return Subscription(
        topic=row["topic"],
        callback=row["callback"],
        feed=_topic(row["feed"]),
        secret=row["secret"],
        lease_seconds=int(row["lease_seconds"]),
        expires=float(row["expires"]),
        failures=int(row["failures"]),
        last_error=row["last_error"],
    )
