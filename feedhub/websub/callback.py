"""The subscriber's callback, as web workers answer it: `<base_url>/websub/callback/<id>`.

GET is the hub's verification of intent (the Recommendation's 5.3): the challenge is echoed
only for the topic of a subscription feedhub asked for, else 404. POST is content distribution
(7): kept for the WebSub worker to merge only when its X-Hub-Signature matches the secret
feedhub gave that hub (8); otherwise ignored, yet answered 2xx as the Recommendation says.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping

from feedhub.limits import MAX_CHALLENGE_CHARS
from feedhub.websub.intake import Answer
from feedhub.websub.push_store import PushStore
from feedhub.websub.retry import backoff

log = logging.getLogger(__name__)

CALLBACK_PREFIX = "/websub/callback/"
SIGNATURE_METHODS = {
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
}
MIN_LEASE_SECONDS = 60
MAX_LEASE_SECONDS = 365 * 86400
LEASE_WITHOUT_ONE = 86400  # a hub that gives no hub.lease_seconds: renewed within a day
_RENEW_AT = 0.8  # of the lease, at most a day before it ends


def signature_valid(header: str | None, secret: str, body: bytes) -> bool:
    """X-Hub-Signature: `method=hex digest` of the body keyed with the subscription's secret."""
    if not header or not secret:
        return False
    method, _, given = header.strip().partition("=")
    digest = SIGNATURE_METHODS.get(method.lower())
    if digest is None:
        return False
    expected = hmac.new(secret.encode(), body, digest).hexdigest()
    return hmac.compare_digest(expected, given.strip().lower())


def renewal_time(lease_seconds: float, now: float) -> float:
    """When to ask the hub again: most of the way through the lease, a day before its end at most."""
    return now + max(lease_seconds * _RENEW_AT, lease_seconds - 86400)


def verify(callback_id: str, params: Mapping[str, str], store: PushStore, now: float) -> Answer:
    subscription = store.by_callback(callback_id)
    mode, topic = params.get("hub.mode", ""), params.get("hub.topic", "")
    if subscription is None or not subscription.secret or topic != subscription.topic:
        return Answer(404, "no such subscription")
    if mode == "denied":
        reason = params.get("hub.reason", "")[:MAX_CHALLENGE_CHARS] or "no reason given"
        # asked again later: a hub may deny for a while (a quota), not for good
        retry_at = now + backoff(subscription.attempts + 1)
        store.failed(callback_id, f"the hub denied the subscription: {reason}", retry_at)
        log.warning(
            "source %s: %s denied the subscription: %s", subscription.source, subscription.hub, reason
        )
        return Answer(200, "")
    challenge = params.get("hub.challenge", "")
    if mode != "subscribe":  # feedhub never asks to unsubscribe: it forgets, and the hub gets 410s
        return Answer(404, "not a subscription feedhub asked for")
    if not challenge or len(challenge) > MAX_CHALLENGE_CHARS:
        return Answer(400, "hub.challenge is missing or too long")
    lease = params.get("hub.lease_seconds", "")
    seconds = int(lease) if lease.isascii() and lease.isdigit() and len(lease) <= 12 else LEASE_WITHOUT_ONE
    seconds = min(max(seconds, MIN_LEASE_SECONDS), MAX_LEASE_SECONDS)
    store.verified(callback_id, seconds, renewal_time(seconds, now), now)
    log.info("source %s: %s pushes %s for %d s", subscription.source, subscription.hub, topic, seconds)
    return Answer(200, challenge)


def receive(
    callback_id: str,
    signature: str | None,
    content_type: str | None,
    body: bytes,
    store: PushStore,
    now: float,
) -> Answer:
    subscription = store.by_callback(callback_id)
    if subscription is None or not subscription.secret:
        return Answer(410, "no such subscription")  # the hub may end it
    if not signature_valid(signature, subscription.secret, body):
        problem = "without a signature" if not signature else "with a wrong signature"
        log.warning("source %s: content pushed %s ignored", subscription.source, problem)
        return Answer(202, "ignored")
    store.receive(subscription, content_type, body, now)
    return Answer(202, "accepted")
