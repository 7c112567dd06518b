"""feedhub as a WebSub subscriber of its upstream feeds.

A poll that finds a hub (`record_discovery`) makes a subscription to want; the WebSub worker
(`UpstreamSubscriber.tick`) sends the subscription requests, asks again before a lease ends or
after a failure, and merges what hubs pushed through the poll's own path (`Poller.push`). While
a hub pushes, the source is polled only every `websub_poll_interval`, as a safety net.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from feedhub.aggregator.entries import ParsedFeed
from feedhub.aggregator.sources import PushMode, Source
from feedhub.config import Config
from feedhub.errors import StorageError
from feedhub.websub.callback import CALLBACK_PREFIX
from feedhub.websub.callbacks import CallbackClient
from feedhub.websub.discovery import discover, unreachable_reason
from feedhub.websub.push_store import Pushed, PushState, PushStore, UpstreamSubscription
from feedhub.websub.retry import backoff

log = logging.getLogger(__name__)

_INBOX_BATCH = 50


def record_discovery(
    store: PushStore,
    config: Config,
    source: Source,
    headers: Mapping[str, str],
    feed: ParsedFeed,
    url: str,
    now: float,
) -> None:
    """After a poll that got the feed: subscribe to the hub it names (or stop wanting one)."""
    found = discover(headers.get("link"), feed.hubs, feed.self_url, url)
    current = store.get(source.id)
    if source.websub is PushMode.OFF or found is None or source.is_file:
        if current is not None:
            store.forget(source.id)
            log.info("source %s: no longer subscribed to %s", source.id, current.hub)
        return
    hub = found.hubs[0]
    unreachable = unreachable_reason(config.base_url, hub)
    # a refused row has no secret: it is looked at again when base_url changes
    same = current is not None and (current.hub, current.topic) == (hub, found.topic)
    if same and current is not None and bool(current.secret) == (unreachable is None):
        return
    if unreachable:
        store.refuse(source.id, hub, found.topic, unreachable)
        log.info("source %s: not subscribing: %s", source.id, unreachable)
        return
    store.want(source.id, hub, found.topic, source.allow_private_addresses, now)
    log.info("source %s: the feed names the hub %s; subscribing", source.id, hub)


def push_interval(store: PushStore, source: Source, now: float) -> int:
    """The source's polling interval: the long safety one while a hub pushes it."""
    subscription = store.get(source.id)
    if subscription is not None and subscription.pushing(now):
        return max(source.interval, source.websub_poll_interval)
    return source.interval


class UpstreamSubscriber:
    def __init__(
        self,
        config: Config,
        store: PushStore,
        client: CallbackClient,
        ingest: Callable[[Pushed], bool],
        clock: Callable[[], float] = time.time,
        push_stopped: Callable[[str], None] = lambda _source: None,
    ) -> None:
        self.config = config
        self.store = store
        self.client = client
        self.ingest = ingest  # merges pushed content; False: not now (the source is being polled)
        self.clock = clock
        self.push_stopped = push_stopped  # a source no longer pushed: poll it at its interval again
        self._pushing: set[str] = set()

    def tick(self) -> None:
        now = self.clock()
        subscriptions = self.store.all()  # one read a round; what changes now shows in the next one
        for subscription in subscriptions.values():
            if subscription.lapsed(now):
                self.store.lapse(subscription, now)
                log.warning(
                    "source %s: the hub's lease ended without a renewal; polling as usual",
                    subscription.source,
                )
        due = [found for found in subscriptions.values() if found.request_due(now)]
        for subscription in sorted(due, key=lambda found: found.next_request or now):
            self._request(subscription)
        # subscribed in this read (a lease just ended too): a poll may have seen it pushed, though
        # no earlier round did (verified while that round ran)
        subscribed = {
            source for source, found in subscriptions.items() if found.state is PushState.SUBSCRIBED
        }
        pushing = {source for source, found in subscriptions.items() if found.pushing(now)}
        for source in (self._pushing | subscribed) - pushing:  # lapsed, failed, denied, or forgotten
            self.push_stopped(source)
        self._pushing = pushing
        for pushed in self.store.inbox(_INBOX_BATCH):
            try:
                done = self.ingest(pushed)
            except StorageError:
                raise
            except Exception:
                log.exception("source %s: pushed content could not be merged", pushed.source)
                done = True  # a bug met on hostile content: this item fails, the others go on
            if not done:
                break  # the source is being polled: the rest waits for the next round
            self.store.merged(pushed)

    def close(self) -> None:
        """Nothing runs beside the rounds: nothing to wait for."""

    def callback_url(self, subscription: UpstreamSubscription) -> str:
        return f"{self.config.base_url}{CALLBACK_PREFIX}{subscription.callback_id}"

    def _request(self, subscription: UpstreamSubscription) -> None:
        sent = self.clock()
        form = {
            "hub.mode": "subscribe",
            "hub.topic": subscription.topic,
            "hub.callback": self.callback_url(subscription),
            "hub.secret": subscription.secret,
        }
        problem = self.client.post_form(subscription.hub, form, guarded=not subscription.private_ok)
        if problem is None:
            self.store.requested(subscription, sent, self.clock())
            return
        retry_at = self.clock() + backoff(subscription.attempts + 1)
        self.store.failed(subscription.callback_id, f"subscription request failed: {problem}", retry_at)
        log.warning("source %s: subscribing at %s failed: %s", subscription.source, subscription.hub, problem)
