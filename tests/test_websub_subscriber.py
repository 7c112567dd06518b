"""feedhub as a WebSub subscriber of an upstream feed, against an independent hub and publisher
(tests/websub_peers.py) on 127.0.0.1: the subscriber cases of websub.rocks (discovery from the
Link header and from the feed, verification, signatures with each algorithm and a bad one,
renewal) and the safety polling around them."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable, Iterator
from zoneinfo import ZoneInfo

import pytest

from feedhub.aggregator.entries import parse_feed
from feedhub.aggregator.poller import Poller
from feedhub.aggregator.sources import load_sources
from feedhub.aggregator.state import StateStore
from feedhub.limits import MAX_PUSH_BYTES
from feedhub.storage import open_storage
from feedhub.websub.callbacks import CallbackClient
from feedhub.websub.discovery import discover, unreachable_reason
from feedhub.websub.push_store import PushState, PushStore
from feedhub.websub.subscriber import UpstreamSubscriber
from tests.helpers import BASE_URL, BOTH_BACKENDS, FrozenClock, Server, SiteFolder, open_index, wait_for
from tests.upstream import item, rss
from tests.websub_peers import Hub

NOW = 1_790_000_000.0


class Subscribing:
    """A site with one source whose feed names the test hub; its poller and WebSub subscriber
    driven by the test on a frozen clock, its web app serving the callbacks over HTTP."""

    def __init__(self, site: SiteFolder, serve: Callable[..., Server], hub: Hub, **source: object) -> None:
        self.site, self.hub, self.clock = site, hub, FrozenClock(NOW)
        site.write_sources({"id": "up", "url": hub.topic, "allow_private_addresses": True, **source})
        self.config = site.config()
        self.server = serve(self.config, clock=self.clock)
        hub.reach = lambda url: url.replace(BASE_URL, self.server.url)  # base_url is served there
        self.index = open_index(self.config, self.clock)
        state = StateStore(open_storage(self.config).state)
        self.poller = Poller(self.config, self.index.writer, state, self.clock)
        (self.source,) = load_sources(self.config)
        self.store = PushStore(state.backend)
        self.stopped: list[str] = []  # what the scheduler is told: polled at the interval again
        self.subscriber = UpstreamSubscriber(
            self.config,
            self.store,
            CallbackClient("feedhub-test", False),
            lambda pushed: self.poller.push(self.source, pushed) is not None,
            self.clock,
            push_stopped=self.stopped.append,
        )

    def poll(self) -> None:
        report = self.poller.poll(self.source)
        assert not report.failed, report.reason

    def state(self) -> PushState | None:
        found = self.store.get("up")
        return found.state if found else None

    def settle(self, until: Callable[[], object]) -> object:
        return wait_for(lambda: (self.subscriber.tick(), until())[-1])

    def titles(self) -> list[str]:
        return sorted(
            path.read_text("utf-8").split('title: "')[1].split('"')[0]
            for path in self.site.posts.glob("*.md")
        )


@pytest.fixture
def hub() -> Iterator[Hub]:
    peer = Hub()
    peer.feed = rss(item("first", guid="1"))
    yield peer
    peer.stop()


@pytest.fixture
def subscribing(site: SiteFolder, serve: Callable[..., Server], hub: Hub) -> Subscribing:
    return Subscribing(site, serve, hub)


def subscribed(subscribing: Subscribing) -> None:
    subscribing.poll()
    assert subscribing.state() is PushState.REQUESTING
    assert subscribing.settle(lambda: subscribing.state() is PushState.SUBSCRIBED)
    # feedhub counts itself subscribed as its callback answers; the hub records it when the answer
    # has reached it, a moment later (CI once asserted in between)
    assert wait_for(lambda: subscribing.hub.verified)


@BOTH_BACKENDS
def test_discovered_from_the_link_header_subscribed_and_pushed(subscribing: Subscribing, hub: Hub) -> None:
    subscribed(subscribing)
    (request,) = hub.requests
    assert request["hub.mode"] == "subscribe" and request["hub.topic"] == hub.topic
    assert request["hub.callback"].startswith(f"{BASE_URL}/websub/callback/")
    assert len(request["hub.secret"]) >= 32
    assert subscribing.titles() == ["first"]

    assert hub.publish(rss(item("pushed", guid="2"), item("first", guid="1"))) == [202]
    assert subscribing.settle(lambda: "pushed" in subscribing.titles())
    assert subscribing.titles() == ["first", "pushed"]  # deduplicated with what the poll merged
    status = json.loads(subscribing.server.get("/status.json").body)
    (source,) = status["sources"]
    assert source["push"].startswith("push subscribed until ")


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "sha384", "sha512"])
def test_every_signature_algorithm_is_checked(subscribing: Subscribing, hub: Hub, algorithm: str) -> None:
    subscribed(subscribing)
    assert hub.publish(rss(item(f"signed {algorithm}", guid="2")), algorithm=algorithm) == [202]
    assert subscribing.settle(lambda: f"signed {algorithm}" in subscribing.titles())


@pytest.mark.parametrize("sign", ["wrong", "none"])
def test_content_with_a_bad_or_no_signature_is_ignored(subscribing: Subscribing, hub: Hub, sign: str) -> None:
    subscribed(subscribing)
    assert hub.publish(rss(item("forged", guid="2")), sign=sign) == [202]  # still 2xx, as 8 says
    subscribing.subscriber.tick()
    assert subscribing.store.inbox(10) == [] and subscribing.titles() == ["first"]


def test_only_the_subscription_asked_for_is_confirmed(subscribing: Subscribing, hub: Hub) -> None:
    subscribed(subscribing)
    (callback,) = hub.verified
    assert hub.ask(callback, "https://other.example/feed") == (404, "no such subscription")
    assert hub.ask(callback, hub.topic, mode="unsubscribe")[0] == 404
    assert hub.ask(f"{BASE_URL}/websub/callback/not-one-we-made", hub.topic)[0] == 404
    assert subscribing.server.get("/websub/callback/nope", method="POST").status == 410


@pytest.mark.parametrize("where", ["atom", "rss", "json"])
def test_discovered_from_the_feed_itself(where: str) -> None:
    documents = {
        "atom": b'<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><link rel="hub" href="https://hub.example/"/>'
        b'<link rel="self" href="https://up.example/feed.atom"/><entry><title>a</title><id>1</id></entry></feed>',
        "rss": b'<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel><title>t</title>'
        b'<atom:link rel="hub" href="https://hub.example/"/><atom:link rel="self" href="https://up.example/feed.atom"/>'
        b"<item><title>a</title><guid>1</guid></item></channel></rss>",
        "json": json.dumps(
            {
                "version": "https://jsonfeed.org/version/1.1",
                "title": "t",
                "feed_url": "https://up.example/feed.atom",
                "hubs": [{"type": "WebSub", "url": "https://hub.example/"}],
                "items": [{"id": "1", "title": "a", "content_text": "x"}],
            }
        ).encode(),
    }
    feed = parse_feed(documents[where], {}, "https://up.example/fetched", ZoneInfo("UTC"))
    found = discover(None, feed.hubs, feed.self_url, "https://up.example/fetched")
    assert found is not None
    assert found.hubs == ("https://hub.example/",) and found.topic == "https://up.example/feed.atom"
    # the Link header wins over the document
    header = '<https://other-hub.example/>; rel="hub", </moved>; rel="self"'
    preferred = discover(header, feed.hubs, feed.self_url, "https://up.example/fetched")
    assert preferred is not None
    assert preferred.hubs == ("https://other-hub.example/",) and preferred.topic == "https://up.example/moved"


def test_a_hub_that_cannot_reach_the_site_is_not_asked() -> None:
    assert unreachable_reason("http://127.0.0.1:8000", "https://hub.example/") is not None
    assert unreachable_reason("http://localhost:8000", "https://hub.example/") is not None
    assert unreachable_reason("http://10.0.0.5", "https://hub.example/") is not None
    assert unreachable_reason("http://10.0.0.5", "http://10.0.0.9/hub") is None  # one private network
    assert unreachable_reason("http://127.0.0.1:8000", "http://127.0.0.1:9000/hub") is None
    assert unreachable_reason("https://news.example.org", "https://hub.example/") is None


def test_renewed_before_the_lease_ends(subscribing: Subscribing, hub: Hub) -> None:
    subscribed(subscribing)
    subscribing.clock.now += 0.8 * hub.lease_seconds - 10
    subscribing.subscriber.tick()
    assert len(hub.requests) == 1
    subscribing.clock.now += 20
    first_lease = subscribing.store.get("up").lease_until  # type: ignore[union-attr]

    def renewed() -> bool:
        found = subscribing.store.get("up")
        return found is not None and (found.lease_until or 0) > (first_lease or 0)

    assert subscribing.settle(renewed) and len(hub.requests) == 2
    subscription = subscribing.store.get("up")
    assert subscription is not None and subscription.state is PushState.SUBSCRIBED
    assert subscription.lease_until == pytest.approx(subscribing.clock.now + hub.lease_seconds, abs=5)


def test_polling_slows_while_pushed_and_returns_when_the_lease_lapses(
    subscribing: Subscribing, hub: Hub
) -> None:
    subscribed(subscribing)
    subscribing.poll()
    state = StateStore(open_storage(subscribing.config).state).all_sources()["up"]
    assert state.next_poll is not None and state.next_poll - subscribing.clock.now >= 6 * 3600
    hub.answer_status = 500  # the renewal fails
    subscribing.clock.now += hub.lease_seconds + 1
    subscribing.subscriber.tick()
    subscribing.subscriber.tick()
    assert subscribing.state() is PushState.FAILED
    assert "500" in (subscribing.store.get("up").reason or "")  # type: ignore[union-attr]
    assert subscribing.stopped == ["up"]
    subscribing.poll()
    state = StateStore(open_storage(subscribing.config).state).all_sources()["up"]
    assert state.next_poll is not None and state.next_poll - subscribing.clock.now <= 30 * 60 + 60
    status = json.loads(subscribing.server.get("/status.json").body)
    assert status["sources"][0]["push"].startswith("push failed: ")


def test_a_lease_that_lapses_is_told_even_when_no_round_saw_it_pushing(
    subscribing: Subscribing, hub: Hub
) -> None:
    # the hub verifies while a round runs (after its read), a poll then sees the source pushed and
    # sets the long safety interval: the round that finds the lease ended must still say so
    subscribing.poll()
    subscribing.subscriber.tick()  # the request; the hub verifies on its own thread
    assert wait_for(lambda: subscribing.state() is PushState.SUBSCRIBED)
    subscribing.poll()
    hub.answer_status = 500
    subscribing.clock.now += hub.lease_seconds + 1
    subscribing.subscriber.tick()
    assert subscribing.stopped == ["up"]


def test_a_denial_is_shown(subscribing: Subscribing, hub: Hub) -> None:
    subscribed(subscribing)
    (callback,) = hub.verified
    assert hub.deny(callback, "quota exceeded") == 200
    assert subscribing.state() is PushState.FAILED
    assert "quota exceeded" in (subscribing.store.get("up").reason or "")


def test_websub_off_polls_only(site: SiteFolder, serve: Callable[..., Server], hub: Hub) -> None:
    subscribing = Subscribing(site, serve, hub, websub="off")
    subscribing.poll()
    assert subscribing.state() is None and hub.requests == []


def test_a_hub_on_a_private_address_needs_the_sources_permission(
    site: SiteFolder, serve: Callable[..., Server], hub: Hub
) -> None:
    subscribing = Subscribing(site, serve, hub)
    subscribing.poll()
    row = subscribing.store.get("up")
    assert row is not None and row.private_ok
    # the same feed, with the source not allowing private addresses: the hub is never reached
    site.write_sources({"id": "up", "url": hub.topic})
    (subscribing.source,) = load_sources(subscribing.config)
    subscribing.store.want("up", hub.url, hub.topic, private_ok=False, now=NOW)
    subscribing.subscriber.tick()
    row = subscribing.store.get("up")
    assert row is not None and row.state is PushState.FAILED and "loopback" in (row.reason or "")
    assert hub.requests == []


def test_pushed_content_beyond_the_limit_is_refused(subscribing: Subscribing, hub: Hub) -> None:
    subscribed(subscribing)
    (callback,) = hub.verified
    path = callback.replace(BASE_URL, "")
    connection = http.client.HTTPConnection(
        "127.0.0.1", int(subscribing.server.url.rsplit(":", 1)[1]), timeout=30
    )
    try:
        connection.request(
            "POST", path, body=b"x" * (MAX_PUSH_BYTES + 1), headers={"Content-Type": "application/rss+xml"}
        )
        assert connection.getresponse().status == 413
    finally:
        connection.close()
    assert subscribing.store.inbox(10) == []
