"""A subscription request to the built-in hub, checked in the web worker that receives it.

Only what needs no network is decided here (the Recommendation's 5.1 and 5.2): a malformed
request gets a 4xx at once; a well-formed one is stored and answered 202 Accepted, and the
hub worker then verifies the subscriber's intent, or tells it the request is denied (a topic
this site does not publish). The callback's resolved address is checked when it is reached.
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from feedhub.addresses import refusal
from feedhub.config import WebSubSettings
from feedhub.limits import MAX_CALLBACK_URL_CHARS, MAX_SECRET_BYTES, MAX_WAITING_REQUESTS
from feedhub.site import Site
from feedhub.urls import is_http_url
from feedhub.websub.store import HubRequest, HubStore, Intent
from feedhub.websub.topics import parse_topic

PRIVATE_CALLBACK_HINT = "websub: allow_private_callbacks: true allows it"


@dataclass(frozen=True)
class Answer:
    status: int
    text: str


def receive(form: Mapping[str, str], site: Site, store: HubStore, now: float) -> Answer:
    """Check a hub.* form and store it for verification; the HTTP answer to give."""
    settings = site.config.websub
    mode = form.get("hub.mode", "")
    if mode not in (Intent.SUBSCRIBE.value, Intent.UNSUBSCRIBE.value):
        return Answer(400, "hub.mode must be subscribe or unsubscribe")
    callback, topic = form.get("hub.callback", ""), form.get("hub.topic", "")
    problem = callback_problem(callback, settings) or _topic_problem(topic)
    secret = form.get("hub.secret") or None
    if secret is not None and len(secret.encode()) > MAX_SECRET_BYTES:
        problem = problem or f"hub.secret must be under {MAX_SECRET_BYTES + 1} bytes"
    lease = form.get("hub.lease_seconds", "")
    if lease and not (lease.isascii() and lease.isdigit() and len(lease) <= 12):
        problem = problem or "hub.lease_seconds must be a whole number of seconds"
    if problem:
        return Answer(400, problem)
    if store.waiting_requests() >= MAX_WAITING_REQUESTS:
        return Answer(503, "too many requests wait for verification; try again later")
    feed = parse_topic(site.urls, topic)
    if feed is not None and feed.slug is not None and site.category(feed.slug) is None:
        feed = None
    intent = Intent(mode) if feed is not None else Intent.DENY
    if intent is Intent.SUBSCRIBE:
        limit = limit_problem(store, settings, topic, callback)
        if limit:
            return Answer(403, limit)
    store.add_request(
        HubRequest(
            id=uuid.uuid4().hex,
            received=now,
            intent=intent,
            topic=topic,
            feed=feed,
            callback=callback,
            secret=secret,
            lease_seconds=lease_within(settings, int(lease) if lease else None),
            reason=None if feed is not None else "the topic is not a feed this hub publishes",
        )
    )
    return Answer(202, "Accepted: the callback will be asked to confirm")


def lease_within(settings: WebSubSettings, asked: int | None) -> int:
    """The lease a subscription gets: what it asked for, within the hub's bounds."""
    if asked is None:
        return settings.lease_seconds
    return min(max(asked, settings.min_lease_seconds), settings.max_lease_seconds)


def callback_problem(callback: str, settings: WebSubSettings) -> str | None:
    """Why a callback URL cannot be taken, as far as can be told without resolving its host."""
    if not callback:
        return "hub.callback is required"
    if len(callback) > MAX_CALLBACK_URL_CHARS or not is_http_url(callback):
        return f"hub.callback must be an http(s) URL of at most {MAX_CALLBACK_URL_CHARS} characters"
    if urlsplit(callback).fragment:
        return "hub.callback must not have a fragment"
    if settings.allow_private_callbacks:
        return None
    host = (urlsplit(callback).hostname or "").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return f"hub.callback: {host} is a loopback address ({PRIVATE_CALLBACK_HINT})"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None  # a name: its addresses are checked on each connection
    kind = refusal(host)
    return f"hub.callback: {host} is {kind} ({PRIVATE_CALLBACK_HINT})" if kind else None


def _topic_problem(topic: str) -> str | None:
    if not topic:
        return "hub.topic is required"
    if len(topic) > MAX_CALLBACK_URL_CHARS:
        return f"hub.topic must be at most {MAX_CALLBACK_URL_CHARS} characters"
    return None


def limit_problem(store: HubStore, settings: WebSubSettings, topic: str, callback: str) -> str | None:
    """Why a new subscription would be beyond the hub's limits (a renewal never is), or None.
    Checked when it is asked for and again when it is verified (requests may race)."""
    per_topic, per_host, exists = store.counts_for(topic, callback)
    if exists:
        return None
    if per_topic >= settings.max_subscriptions_per_topic:
        return f"this topic has the most subscriptions the hub takes ({settings.max_subscriptions_per_topic})"
    if per_host >= settings.max_subscriptions_per_callback_host:
        return (
            "the callback's host has the most subscriptions the hub takes "
            f"({settings.max_subscriptions_per_callback_host})"
        )
    return None
