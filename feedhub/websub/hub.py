"""The built-in hub's worker: verifies subscription requests, notices which topics' bytes
changed, delivers them to subscribers and pings outside hubs, retrying with backoff.

It runs in exactly one process per data folder, never in a web request: the scheduler's
(`feedhub poll`, which `feedhub serve` starts), and with PostgreSQL in the one poller that
holds the hub's lead. Deliveries to one callback server (scheme, host and port) go through at
most DELIVERIES_PER_HOST lanes of a shared thread pool, so a slow one holds a few threads and
never the others.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import replace

from feedhub.addresses import origin
from feedhub.cache import Representation, ResponseCache
from feedhub.errors import StorageError
from feedhub.feeds import FEED_FORMATS
from feedhub.limits import DELIVERIES_PER_HOST, DELIVERY_THREADS
from feedhub.pages import Pages
from feedhub.redact import public_url
from feedhub.site import Site
from feedhub.websub.callbacks import CallbackClient, DeliveryResult
from feedhub.websub.intake import lease_within, limit_problem
from feedhub.websub.retry import next_try
from feedhub.websub.store import Delivery, HubRequest, HubStore, Intent, Ping
from feedhub.websub.topics import Topic

log = logging.getLogger(__name__)

EXPIRY_CHECK_SECONDS = 60.0
_BATCH = 2_000  # due deliveries fetched at a time

Key = tuple[str, str]  # (topic, callback) or (hub, topic)


class HubWorker:
    def __init__(
        self,
        site: Site,
        store: HubStore,
        client: CallbackClient,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.site = site
        self.config = site.config
        self.pages = Pages(site)
        self.store = store
        self.client = client
        self.clock = clock
        self.outside_hubs = self.config.websub.hubs
        self._pool = ThreadPoolExecutor(DELIVERY_THREADS, thread_name_prefix="websub")
        self._lock = threading.Lock()
        self._futures: set[Future[None]] = set()
        self._busy: set[Key] = set()  # deliveries queued or under way
        self._queued: dict[str, deque[Delivery]] = {}  # by callback server (its origin)
        self._lanes: Counter[str] = Counter()
        self._pinging: set[Key] = set()
        self._verifying: dict[Key, deque[HubRequest]] = {}
        self._content = ResponseCache()  # the topics' bodies, bounded in bytes
        self._expired_at = 0.0

    # ---- the rounds -----------------------------------------------------------------------------

    def tick(self) -> None:
        """One round: take requests, publish what changed, start what is due."""
        now = self.clock()
        self._take_requests()
        self._publish_changes(now)
        self._start_deliveries(now)
        self._start_pings(now)
        if now - self._expired_at >= EXPIRY_CHECK_SECONDS:
            self._expired_at = now
            for gone in self.store.expire(now):
                log.info("websub hub: the lease of %s ended", self._who(gone.callback, gone.topic))

    def drain(self) -> None:
        """Wait until nothing is under way (tests, and a clean stop)."""
        while True:
            with self._lock:
                pending = set(self._futures)
            if not pending:
                return
            wait(pending)

    def close(self) -> None:
        self.drain()
        self._pool.shutdown(wait=True)

    def _submit(self, task: Callable[[], None]) -> None:
        future = self._pool.submit(self._guarded, task)
        with self._lock:
            self._futures.add(future)
        future.add_done_callback(self._forget)

    def _forget(self, future: Future[None]) -> None:
        with self._lock:
            self._futures.discard(future)

    @staticmethod
    def _guarded(task: Callable[[], None]) -> None:
        """Run one piece of work; what it raises is logged, and the work around it goes on."""
        try:
            task()
        except StorageError as exc:
            log.warning("websub hub: %s", exc)
        except Exception:
            log.exception("websub hub: unexpected error")

    # ---- verification of intent (5.3) ---------------------------------------------------------

    def _take_requests(self) -> None:
        if not self.store.waiting_requests():
            return
        for request in self.store.take_requests(_BATCH):
            key = (request.topic, request.callback)
            with self._lock:
                queue = self._verifying.get(key)
                if queue is not None:  # one at a time per subscription, in the order received
                    queue.append(request)
                    continue
                self._verifying[key] = deque([request])
            self._submit(lambda key=key: self._verify_in_turn(key))  # type: ignore[misc]

    def _verify_in_turn(self, key: Key) -> None:
        while True:
            with self._lock:
                queue = self._verifying[key]
                if not queue:
                    del self._verifying[key]
                    return
                request = queue.popleft()
            self._guarded(lambda request=request: self._verify(request))  # type: ignore[misc]

    def _verify(self, request: HubRequest) -> None:
        who = self._who(request.callback, request.topic)
        if request.intent is Intent.SUBSCRIBE:
            refused = limit_problem(self.store, self.config.websub, request.topic, request.callback)
            if refused:
                request = replace(request, intent=Intent.DENY, reason=refused)
        if request.intent is Intent.DENY:
            problem = self.client.deny(request)
            log.info("websub hub: denied %s (%s)%s", who, request.reason, f"; {problem}" if problem else "")
            return
        lease = lease_within(self.config.websub, request.lease_seconds)
        problem = self.client.verify(request, lease)
        if problem:
            log.warning("websub hub: %s of %s not verified: %s", request.intent.value, who, problem)
            return
        if request.intent is Intent.SUBSCRIBE:
            self.store.activate(request, lease, self.clock())
            log.info("websub hub: subscribed %s for %d s", who, lease)
        else:
            self.store.remove(request.topic, request.callback)
            log.info("websub hub: unsubscribed %s", who)

    def _who(self, callback: str, topic: str) -> str:
        """A subscription as the log names it: the callback without its query (it may hold a token)."""
        return f"{public_url(callback, self.config.path.parent)} on {topic}"

    # ---- what changed (7) ---------------------------------------------------------------------

    def _publish_changes(self, now: float) -> None:
        instance = self.site.instance()
        mark = self.store.mark()
        if mark is None:  # the first run: nothing was published before, nothing to tell
            self.store.set_mark(instance, max(self.site.changes_since(0).values(), default=0))
            return
        marked_instance, marked_version = mark
        rebuilt = marked_instance != instance  # a new index: its versions start again
        if rebuilt:
            self._content = ResponseCache()  # its versions are the old index's
        changed = self.site.changes_since(0 if rebuilt else marked_version)
        if not changed and not rebuilt:
            return
        subscribed = self.store.subscribed_feeds(now)
        if rebuilt:
            topics = subscribed
        else:
            topics = {Topic(slug, fmt) for slug in changed.keys() | {None} for fmt in FEED_FORMATS}
            if not self.outside_hubs:
                topics &= subscribed  # nobody to tell about the rest: never built
        for topic in topics:
            content = self.content(topic, changed.get(topic.slug))
            if content is None:
                continue  # the category is gone: nothing to publish
            urls = [self.site.urls.feed(topic.slug, topic.fmt)]
            if self.store.publish(topic, content.etag, self.outside_hubs, urls, now):
                log.debug("websub hub: %s changed", urls[0])
        self.store.set_mark(instance, max(changed.values(), default=marked_version))

    def content(self, topic: Topic, version: int | None = None) -> Representation | None:
        """The topic's body at `version` (default: the one this process knows), built once per
        version whatever the number of deliveries."""
        wanted = version if version is not None else self.site.version(topic.slug)
        return self._content.get_or_build(topic, wanted, lambda: self.pages.feed(topic.slug, topic.fmt, 1))

    # ---- content distribution -----------------------------------------------------------------

    def _start_deliveries(self, now: float) -> None:
        with self._lock:
            busy = set(self._busy)
        due = self.store.due_deliveries(now, _BATCH, busy)
        starting: list[str] = []
        with self._lock:
            for delivery in due:
                subscription = delivery.subscription
                self._busy.add((subscription.topic, subscription.callback))
                server = origin(subscription.callback)
                self._queued.setdefault(server, deque()).append(delivery)
            for server, queue in self._queued.items():
                while len(queue) > self._lanes[server] and self._lanes[server] < DELIVERIES_PER_HOST:
                    self._lanes[server] += 1
                    starting.append(server)
        for server in starting:
            self._submit(lambda server=server: self._lane(server))  # type: ignore[misc]

    def _lane(self, server: str) -> None:
        """Deliver to one callback server, one delivery after another, until its queue is empty."""
        while True:
            with self._lock:
                queue = self._queued.get(server)
                if not queue:
                    self._lanes[server] -= 1
                    if not self._lanes[server]:
                        del self._lanes[server]
                        self._queued.pop(server, None)
                    return
                delivery = queue.popleft()
            subscription = delivery.subscription
            try:
                self._guarded(lambda delivery=delivery: self._deliver(delivery))  # type: ignore[misc]
            finally:
                with self._lock:
                    self._busy.discard((subscription.topic, subscription.callback))

    def _deliver(self, delivery: Delivery) -> None:
        subscription = delivery.subscription
        who = self._who(subscription.callback, subscription.topic)
        content = self.content(subscription.feed)
        if content is None:  # the topic is gone (its category has no posts left)
            self.store.delivered(subscription, self.clock())
            return
        outcome = self.client.deliver(subscription, content)
        now = self.clock()
        if outcome.result is DeliveryResult.DELIVERED:
            self.store.delivered(subscription, now)
            return
        if outcome.result is DeliveryResult.GONE:
            self.store.remove(subscription.topic, subscription.callback)
            log.info("websub hub: %s ended its subscription (410 Gone)", who)
            return
        retry_at = next_try(delivery.attempts + 1, delivery.first_due, now)
        self.store.delivery_failed(delivery, outcome.reason or "failed", retry_at, now)
        if retry_at is None:
            log.error(
                "websub hub: delivery to %s dropped after %d tries: %s",
                who,
                delivery.attempts + 1,
                outcome.reason,
            )
        else:
            log.warning(
                "websub hub: delivery to %s failed (%s); next try in %.0f s",
                who,
                outcome.reason,
                retry_at - now,
            )

    # ---- pings to outside hubs ----------------------------------------------------------------

    def _start_pings(self, now: float) -> None:
        if not self.outside_hubs:
            return
        with self._lock:
            busy = set(self._pinging)
        for ping in self.store.due_pings(now, _BATCH, busy):
            with self._lock:
                self._pinging.add((ping.hub, ping.topic))
            self._submit(lambda ping=ping: self._ping(ping))  # type: ignore[misc]

    def _ping(self, ping: Ping) -> None:
        try:
            problem = self.client.ping(ping.hub, ping.topic)
            now = self.clock()
            retry_at = next_try(ping.attempts + 1, ping.first_due, now) if problem else None
            self.store.ping_done(ping, problem, retry_at)
            if problem and retry_at is None:
                log.error("websub: %s was not told of %s: %s; dropped", ping.hub, ping.topic, problem)
            elif problem:
                log.warning("websub: pinging %s for %s failed: %s", ping.hub, ping.topic, problem)
        finally:
            with self._lock:
                self._pinging.discard((ping.hub, ping.topic))
