"""What feedhub keeps as a WebSub subscriber: per source, its subscription to the upstream hub,
and the pushed content waiting to be merged.

Web workers answer the hub's verification and take pushed content (into the inbox); the one
WebSub worker sends the subscription requests and merges the inbox through the poll's path.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from feedhub.storage.base import Backend, Row
from feedhub.storage.schema import migrate
from feedhub.websub.store import WEBSUB_SCHEMA

VERIFY_WAIT_SECONDS = 300.0  # a hub that took a request but never verified it is asked again after this


class PushState(Enum):
    REQUESTING = "requesting"  # a subscription request is to be sent
    PENDING = "pending"  # the hub took the request; its verification has not come yet
    SUBSCRIBED = "subscribed"  # verified: the hub pushes until lease_until
    FAILED = "failed"  # the hub refused, denied or could not be reached; asked again later


@dataclass(frozen=True)
class UpstreamSubscription:
    source: str
    hub: str
    topic: str
    callback_id: str
    secret: str
    private_ok: bool
    state: PushState
    lease_until: float | None
    next_request: float | None
    attempts: int
    reason: str | None
    last_push: float | None

    def pushing(self, now: float) -> bool:
        """Whether the hub is known to push now (its lease has not ended)."""
        return self.state is PushState.SUBSCRIBED and (self.lease_until or 0) > now

    def request_due(self, now: float) -> bool:
        """Whether the hub is to be asked (again) now."""
        return self.next_request is not None and self.next_request <= now

    def lapsed(self, now: float) -> bool:
        """Subscribed, but the lease ended without a renewal."""
        return self.state is PushState.SUBSCRIBED and (self.lease_until or 0) <= now


@dataclass(frozen=True)
class Pushed:
    id: str
    source: str
    content_type: str | None
    body: bytes


class PushStore:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        migrate(backend, WEBSUB_SCHEMA)

    def get(self, source: str) -> UpstreamSubscription | None:
        with self.backend.reading() as conn:
            row = conn.execute("SELECT * FROM websub_upstream WHERE source=?", (source,)).fetchone()
        return _subscription(row) if row else None

    def by_callback(self, callback_id: str) -> UpstreamSubscription | None:
        with self.backend.reading() as conn:
            row = conn.execute("SELECT * FROM websub_upstream WHERE callback_id=?", (callback_id,)).fetchone()
        return _subscription(row) if row else None

    def all(self) -> dict[str, UpstreamSubscription]:
        with self.backend.reading() as conn:
            rows = conn.execute("SELECT * FROM websub_upstream").fetchall()
        return {row["source"]: _subscription(row) for row in rows}

    def want(self, source: str, hub: str, topic: str, private_ok: bool, now: float) -> None:
        """Subscribe this source to this hub and topic: a new callback and secret, asked now."""
        with self.backend.transaction() as conn:
            conn.execute("DELETE FROM websub_upstream WHERE source=?", (source,))
            conn.execute(
                "INSERT INTO websub_upstream (source, hub, topic, callback_id, secret, private_ok, state, "
                "next_request) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    source,
                    hub,
                    topic,
                    secrets.token_urlsafe(24),
                    secrets.token_urlsafe(32),
                    int(private_ok),
                    PushState.REQUESTING.value,
                    now,
                ),
            )

    def refuse(self, source: str, hub: str, topic: str, reason: str) -> None:
        """A hub feedhub does not subscribe to (the callback cannot be reached): shown, not asked."""
        with self.backend.transaction() as conn:
            conn.execute("DELETE FROM websub_upstream WHERE source=?", (source,))
            conn.execute(
                "INSERT INTO websub_upstream (source, hub, topic, callback_id, secret, state, reason) "
                "VALUES (?, ?, ?, ?, '', ?, ?)",
                (source, hub, topic, uuid.uuid4().hex, PushState.FAILED.value, reason),
            )

    def forget(self, source: str) -> None:
        with self.backend.transaction() as conn:
            conn.execute("DELETE FROM websub_upstream WHERE source=?", (source,))
            conn.execute("DELETE FROM websub_inbox WHERE source=?", (source,))

    def requested(self, subscription: UpstreamSubscription, sent: float, now: float) -> None:
        """The hub took the request sent at `sent` (2xx): its verification should come soon. A hub
        that verified before it answered has already made the subscription current: left so."""
        with self.backend.transaction() as conn:
            conn.execute(
                "UPDATE websub_upstream SET state=CASE WHEN state=? THEN state ELSE ? END, "
                "next_request=CASE WHEN next_request <= ? THEN ? ELSE next_request END "
                "WHERE callback_id=?",
                (
                    PushState.SUBSCRIBED.value,  # a renewal: subscribed until the old lease ends
                    PushState.PENDING.value,
                    sent,
                    now + VERIFY_WAIT_SECONDS,
                    subscription.callback_id,
                ),
            )

    def failed(self, callback_id: str, reason: str, retry_at: float | None) -> None:
        with self.backend.transaction() as conn:
            conn.execute(
                "UPDATE websub_upstream SET state=?, reason=?, next_request=?, attempts=attempts + 1, "
                "lease_until=NULL WHERE callback_id=?",
                (PushState.FAILED.value, reason, retry_at, callback_id),
            )

    def verified(self, callback_id: str, lease_seconds: float, renew_at: float, now: float) -> None:
        with self.backend.transaction() as conn:
            conn.execute(
                "UPDATE websub_upstream SET state=?, lease_until=?, next_request=?, attempts=0, reason=NULL "
                "WHERE callback_id=?",
                (PushState.SUBSCRIBED.value, now + lease_seconds, renew_at, callback_id),
            )

    def lapse(self, subscription: UpstreamSubscription, now: float) -> None:
        """A lease that ended without a renewal: the hub is asked again now."""
        with self.backend.transaction() as conn:
            conn.execute(
                "UPDATE websub_upstream SET state=?, reason='the lease ended', lease_until=NULL, "
                "next_request=? WHERE callback_id=? AND state=?",
                (PushState.REQUESTING.value, now, subscription.callback_id, PushState.SUBSCRIBED.value),
            )

    # ---- pushed content -------------------------------------------------------------------------

    def receive(
        self, subscription: UpstreamSubscription, content_type: str | None, body: bytes, now: float
    ) -> None:
        with self.backend.transaction() as conn:
            conn.execute(
                "INSERT INTO websub_inbox VALUES (?, ?, ?, ?, ?)",
                (uuid.uuid4().hex, subscription.source, now, content_type, body),
            )
            conn.execute(
                "UPDATE websub_upstream SET last_push=? WHERE callback_id=?", (now, subscription.callback_id)
            )

    def inbox(self, limit: int) -> list[Pushed]:
        with self.backend.reading() as conn:
            rows = conn.execute(
                "SELECT id, source, content_type, body FROM websub_inbox ORDER BY received LIMIT ?", (limit,)
            ).fetchall()
        return [Pushed(row["id"], row["source"], row["content_type"], bytes(row["body"])) for row in rows]

    def merged(self, pushed: Pushed) -> None:
        with self.backend.transaction() as conn:
            conn.execute("DELETE FROM websub_inbox WHERE id=?", (pushed.id,))


def push_status(
    subscription: UpstreamSubscription | None, now: float, when: Callable[[float], str]
) -> str | None:
    """What /status says of a source's push subscription."""
    if subscription is None:
        return None
    if subscription.pushing(now):
        return f"push subscribed until {when(subscription.lease_until or now)}"
    if subscription.state is PushState.FAILED:
        return f"push failed: {subscription.reason}"
    return f"push pending ({subscription.hub})"


def _subscription(row: Row) -> UpstreamSubscription:
    return UpstreamSubscription(
        source=row["source"],
        hub=row["hub"],
        topic=row["topic"],
        callback_id=row["callback_id"],
        secret=row["secret"],
        private_ok=bool(row["private_ok"]),
        state=PushState(row["state"]),
        lease_until=row["lease_until"],
        next_request=row["next_request"],
        attempts=int(row["attempts"]),
        reason=row["reason"],
        last_push=row["last_push"],
    )
