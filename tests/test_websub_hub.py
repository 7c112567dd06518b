"""The built-in WebSub hub against an independent subscriber (tests/websub_peers.py), over real
HTTP on 127.0.0.1: the hub cases of websub.rocks (subscribe, verify, deny, unsubscribe, lease,
distribution with and without a secret, retries) and feedhub's own bounds."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable, Iterator

import pytest

from feedhub.config import Config
from feedhub.limits import RETRY_FIRST_SECONDS, RETRY_FOR_SECONDS
from feedhub.site import open_site
from feedhub.storage import open_storage
from feedhub.websub.callbacks import CallbackClient
from feedhub.websub.hub import HubWorker
from feedhub.websub.store import HubStore
from tests.helpers import BASE_URL, BOTH_BACKENDS, FrozenClock, Server, SiteFolder, post_text
from tests.websub_peers import Behaviour, Subscriber, links, post_form, signature_ok

NOW = 1_790_000_000.0
TOPIC = f"{BASE_URL}/feeds/news.atom"


class Hub:
    """A site served over HTTP, with its hub worker driven by the test on a frozen clock."""

    def __init__(self, site: SiteFolder, server: Server, config: Config, clock: FrozenClock) -> None:
        self.site, self.server, self.config, self.clock = site, server, config, clock
        self.url = server.url + "/websub"
        self.worker = self.new_worker()

    def new_worker(self) -> HubWorker:
        store = HubStore(open_storage(self.config).state)
        client = CallbackClient("feedhub-test", self.config.websub.allow_private_callbacks)
        return HubWorker(open_site(self.config), store, client, self.clock)

    def rounds(self, seconds: float = 0.0) -> None:
        """Run the worker's rounds for a while (one at least): long enough for what would happen."""
        deadline = time.monotonic() + seconds
        self.settle(lambda: time.monotonic() >= deadline)

    def settle(self, until: Callable[[], object], timeout: float = 10.0) -> object:
        """Run the worker's rounds until `until()` holds (or the time is up); its last value."""
        deadline = time.monotonic() + timeout
        while True:
            self.worker.tick()
            self.worker.drain()
            result = until()
            if result or time.monotonic() > deadline:
                return result
            time.sleep(0.05)

    def change(self, title: str) -> None:
        """A new post in `news`, published once the web app's watcher has indexed it."""
        name = f"2022-05-01-{title.replace(' ', '-')}.md"
        self.site.add(name, post_text(title=title, date="2022-05-01 10:00:00"))

    def status(self) -> dict:
        return json.loads(self.server.get("/status.json").body)


@pytest.fixture
def subscriber() -> Iterator[Subscriber]:
    peer = Subscriber()
    yield peer
    peer.stop()


def make_hub(site: SiteFolder, serve: Callable[..., Server], **websub: object) -> Hub:
    site.add("2022-04-01-first.md", post_text(title="first", date="2022-04-01 10:00:00"))
    site.add("2022-04-01-other.md", post_text(title="elsewhere", categories="other"))
    clock = FrozenClock(NOW)
    config = site.config(websub={"allow_private_callbacks": True, **websub})
    hub = Hub(site, serve(config, clock=clock), config, clock)
    hub.rounds()  # the first round marks what the index holds: nothing to tell anyone yet
    return hub


@pytest.fixture
def hub(site: SiteFolder, serve: Callable[..., Server]) -> Iterator[Hub]:
    made = make_hub(site, serve)
    yield made
    made.worker.close()


def subscribed(hub: Hub, subscriber: Subscriber, name: str, topic: str = TOPIC, **options: object) -> None:
    status, _ = subscriber.subscribe(hub.url, topic, name, **options)  # type: ignore[arg-type]
    assert status == 202
    assert hub.settle(lambda: subscriber.verified(name))


@BOTH_BACKENDS
def test_subscribe_verify_then_deliver_the_whole_feed(hub: Hub, subscriber: Subscriber) -> None:
    status, body = subscriber.subscribe(hub.url, TOPIC, "a")
    assert status == 202 and "Accepted" in body
    assert subscriber.verified("a") == []  # verified by the worker, never inside the request
    assert hub.settle(lambda: subscriber.verified("a"))
    (verification,) = subscriber.verified("a")
    params = verification.params
    assert params["hub.mode"] == "subscribe" and params["hub.topic"] == TOPIC
    assert len(params["hub.challenge"]) >= 16 and params["hub.lease_seconds"] == "864000"

    hub.change("second")
    assert hub.settle(lambda: subscriber.received("a"))
    (notification,) = subscriber.received("a")
    served = hub.server.get("/feeds/news.atom")
    assert notification.body == served.body and b"second" in notification.body
    assert notification.headers["content-type"] == "application/atom+xml; charset=utf-8"
    rels = links(notification.headers["link"])
    assert rels["hub"] == [f"{BASE_URL}/websub"] and rels["self"] == [TOPIC]
    assert "x-hub-signature" not in notification.headers
    # a change elsewhere leaves this topic's bytes as they were: nothing is sent
    hub.site.add("2022-05-02-x.md", post_text(title="not news", categories="other"))
    hub.settle(lambda: b"not news" in hub.server.get("/feeds/other.atom").body)
    hub.rounds(0.5)
    assert len(subscriber.received("a")) == 1


def test_a_subscription_with_a_secret_is_signed(hub: Hub, subscriber: Subscriber) -> None:
    subscribed(hub, subscriber, "signed", secret=True)
    hub.change("signed news")
    assert hub.settle(lambda: subscriber.received("signed"))
    (notification,) = subscriber.received("signed")
    header = notification.headers["x-hub-signature"]
    assert header.startswith("sha256=")
    assert signature_ok(header, subscriber.secrets["signed"], notification.body)
    assert not signature_ok(header, subscriber.secrets["signed"], notification.body + b" ")
    assert not signature_ok(header, "another secret", notification.body)


def test_extra_parameters_are_ignored(hub: Hub, subscriber: Subscriber) -> None:
    subscribed(hub, subscriber, "extra", extra={"foo": "bar", "hub.unknown": "x"})
    hub.change("extra news")
    assert hub.settle(lambda: subscriber.received("extra"))


def test_rss_and_json_topics_carry_their_own_type(hub: Hub, subscriber: Subscriber) -> None:
    subscribed(hub, subscriber, "rss", topic=f"{BASE_URL}/feeds/news.rss")
    subscribed(hub, subscriber, "json", topic=f"{BASE_URL}/feed.json")
    hub.change("in every format")
    assert hub.settle(lambda: subscriber.received("rss") and subscriber.received("json"))
    rss, document = subscriber.received("rss")[0], subscriber.received("json")[0]
    assert rss.headers["content-type"] == "application/rss+xml; charset=utf-8"
    assert document.headers["content-type"] == "application/feed+json"
    assert json.loads(document.body)["hubs"] == [{"type": "WebSub", "url": f"{BASE_URL}/websub"}]
    assert links(document.headers["link"])["self"] == [f"{BASE_URL}/feed.json"]


@BOTH_BACKENDS
def test_resubscribing_renews_the_lease(hub: Hub, subscriber: Subscriber) -> None:
    subscribed(hub, subscriber, "renew", lease=7200)
    assert subscriber.verified("renew")[0].params["hub.lease_seconds"] == "7200"
    hub.clock.now += 7000
    assert subscriber.subscribe(hub.url, TOPIC, "renew", lease=7200)[0] == 202
    assert hub.settle(lambda: len(subscriber.verified("renew")) == 2)
    hub.clock.now += 3600  # past the first lease, within the renewed one
    hub.change("after renewal")
    assert hub.settle(lambda: subscriber.received("renew"))
    hub.clock.now += 7200  # past the renewed lease too: expired, nothing sent
    hub.change("after expiry")
    hub.rounds(1)
    assert len(subscriber.received("renew")) == 1
    assert hub.status()["hub"]["topics"] == []


def test_leases_are_kept_within_bounds(hub: Hub, subscriber: Subscriber) -> None:
    subscribed(hub, subscriber, "short", lease=5)
    subscribed(hub, subscriber, "long", lease=10**9)
    assert subscriber.verified("short")[0].params["hub.lease_seconds"] == "3600"
    assert subscriber.verified("long")[0].params["hub.lease_seconds"] == str(30 * 86400)


@BOTH_BACKENDS
def test_unsubscribe_is_verified_then_nothing_more_comes(hub: Hub, subscriber: Subscriber) -> None:
    subscribed(hub, subscriber, "leaving")
    assert subscriber.subscribe(hub.url, TOPIC, "leaving", mode="unsubscribe")[0] == 202
    assert hub.settle(lambda: len(subscriber.verified("leaving")) == 2)
    assert subscriber.verified("leaving")[1].params["hub.mode"] == "unsubscribe"
    assert "hub.lease_seconds" not in subscriber.verified("leaving")[1].params
    hub.change("nobody listens")
    hub.rounds(1)
    assert subscriber.received("leaving") == []


def test_only_an_exact_echo_activates(hub: Hub, subscriber: Subscriber, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="feedhub")
    subscriber.callback("wrong")
    subscriber.behaviour["wrong"] = Behaviour(verify="wrong")
    subscriber.callback("refuse")
    subscriber.behaviour["refuse"] = Behaviour(verify="refuse")
    subscribed(hub, subscriber, "wrong")
    subscribed(hub, subscriber, "refuse")
    assert "did not echo the challenge" in caplog.text and "answered 404" in caplog.text
    hub.change("for nobody")
    hub.rounds(1)
    assert subscriber.received("wrong") == subscriber.received("refuse") == []


def test_a_topic_the_site_does_not_publish_is_denied(hub: Hub, subscriber: Subscriber) -> None:
    for name, topic in (
        ("elsewhere", "https://other.example/feed.atom"),
        ("unknown", f"{BASE_URL}/feeds/no-such-category.atom"),
        ("page", f"{BASE_URL}/feeds/news.atom?page=2"),
        ("html", f"{BASE_URL}/category/news.html"),
    ):
        assert subscriber.subscribe(hub.url, topic, name)[0] == 202
        assert hub.settle(lambda name=name: subscriber.verified(name))
        (denial,) = subscriber.verified(name)
        assert denial.params["hub.mode"] == "denied" and denial.params["hub.topic"] == topic
        assert denial.params["hub.reason"]
    assert hub.status()["hub"]["topics"] == []


@pytest.mark.parametrize(
    ("form", "status", "says"),
    [
        ({"hub.mode": "subscribe", "hub.topic": TOPIC}, 400, "hub.callback is required"),
        ({"hub.mode": "publish", "hub.topic": TOPIC, "hub.callback": "http://x.example/"}, 400, "hub.mode"),
        ({"hub.mode": "subscribe", "hub.callback": "http://x.example/"}, 400, "hub.topic is required"),
        ({"hub.mode": "subscribe", "hub.topic": TOPIC, "hub.callback": "ftp://x.example/"}, 400, "http(s)"),
        (
            {"hub.mode": "subscribe", "hub.topic": TOPIC, "hub.callback": "javascript:alert(1)"},
            400,
            "http(s)",
        ),
        (
            {
                "hub.mode": "subscribe",
                "hub.topic": TOPIC,
                "hub.callback": "http://x.example/",
                "hub.secret": "s" * 200,
            },
            400,
            "hub.secret",
        ),
        (
            {
                "hub.mode": "subscribe",
                "hub.topic": TOPIC,
                "hub.callback": "http://x.example/",
                "hub.lease_seconds": "-5",
            },
            400,
            "hub.lease_seconds",
        ),
    ],
)
def test_malformed_requests_get_400(hub: Hub, form: dict[str, str], status: int, says: str) -> None:
    answer = post_form(hub.url, form)
    assert answer[0] == status and says in answer[1]


def test_a_request_that_is_no_form_gets_415(hub: Hub) -> None:
    reply = hub.server.get("/websub", method="POST")
    assert reply.status == 415 and "x-www-form-urlencoded" in reply.text


def test_private_callbacks_are_refused_unless_allowed(
    site: SiteFolder, serve: Callable[..., Server], subscriber: Subscriber, monkeypatch, caplog
) -> None:
    hub = make_hub(site, serve, allow_private_callbacks=False)
    try:
        for callback in (
            "http://127.0.0.1:9/cb",
            "http://[::1]/cb",
            "http://169.254.169.254/x",
            "http://localhost/",
        ):
            status, text = post_form(
                hub.url, {"hub.mode": "subscribe", "hub.topic": TOPIC, "hub.callback": callback}
            )
            assert status == 400 and "allow_private_callbacks: true allows it" in text, callback
        # a name is checked on the address it resolves to, when the hub connects
        real = socket.getaddrinfo

        def resolve(host: str, *args: object, **kwargs: object) -> object:
            return real("127.0.0.1" if host == "callback.test" else host, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", resolve)
        caplog.set_level(logging.WARNING, logger="feedhub")
        port = subscriber.base.rsplit(":", 1)[1]
        form = {
            "hub.mode": "subscribe",
            "hub.topic": TOPIC,
            "hub.callback": f"http://callback.test:{port}/cb/x",
        }
        assert post_form(hub.url, form)[0] == 202
        assert hub.settle(lambda: "callback.test is 127.0.0.1, a loopback address" in caplog.text)
        assert subscriber.verified("x") == []
    finally:
        hub.worker.close()


def test_limits_per_topic_and_per_callback_host(
    site: SiteFolder, serve: Callable[..., Server], subscriber: Subscriber
) -> None:
    hub = make_hub(site, serve, max_subscriptions_per_topic=2, max_subscriptions_per_callback_host=3)
    try:
        subscribed(hub, subscriber, "one")
        subscribed(hub, subscriber, "two")
        status, text = subscriber.subscribe(hub.url, TOPIC, "three")
        assert status == 403 and "the most subscriptions" in text
        subscribed(hub, subscriber, "one")  # a renewal is never over the limit
        subscribed(hub, subscriber, "three", topic=f"{BASE_URL}/feed.atom")
        status, text = subscriber.subscribe(hub.url, f"{BASE_URL}/feed.rss", "four")
        assert status == 403 and "host" in text
    finally:
        hub.worker.close()


@BOTH_BACKENDS
def test_failed_deliveries_are_retried_with_backoff_then_dropped(
    hub: Hub, subscriber: Subscriber, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="feedhub")
    subscribed(hub, subscriber, "flaky")
    subscriber.behaviour["flaky"].delivery_statuses = [500, 503]
    hub.change("retried")
    assert hub.settle(lambda: subscriber.received("flaky"))
    failing = hub.status()["hub"]["failing"]
    assert failing[0]["failures"] == 1 and "500" in failing[0]["last_error"]
    assert failing[0]["callback"] == subscriber.base + "/"  # public: no path (it may be a token)
    hub.rounds(0.3)
    assert len(subscriber.received("flaky")) == 1  # not before its backoff
    hub.clock.now += RETRY_FIRST_SECONDS
    assert hub.settle(lambda: len(subscriber.received("flaky")) == 2)
    hub.clock.now += RETRY_FIRST_SECONDS  # the next wait is twice as long
    hub.rounds(0.3)
    assert len(subscriber.received("flaky")) == 2
    hub.clock.now += RETRY_FIRST_SECONDS
    assert hub.settle(lambda: len(subscriber.received("flaky")) == 3)
    assert hub.status()["hub"]["failing"] == []
    assert b"retried" in subscriber.received("flaky")[-1].body

    subscriber.behaviour["flaky"].delivery_statuses = [500] * 1000
    hub.change("never taken")
    tries = 0
    while "dropped after" not in caplog.text:
        assert hub.settle(lambda tries=tries: len(subscriber.received("flaky")) > 3 + tries)
        tries += 1
        hub.clock.now += 3600
        assert tries < 40
    assert hub.clock.now - NOW >= RETRY_FOR_SECONDS - 3600
    hub.clock.now += 86400
    hub.rounds(0.3)
    assert len(subscriber.received("flaky")) == 3 + tries  # dropped: no more tries
    assert hub.status()["hub"]["topics"] == [{"topic": TOPIC, "subscriptions": 1}]  # still subscribed


def test_410_ends_the_subscription(hub: Hub, subscriber: Subscriber) -> None:
    subscribed(hub, subscriber, "gone")
    subscriber.behaviour["gone"].delivery_statuses = [410]
    hub.change("to a gone callback")
    assert hub.settle(lambda: subscriber.received("gone"))
    assert hub.status()["hub"]["topics"] == []


def test_a_slow_or_huge_answer_stalls_no_other_callback(hub: Hub, subscriber: Subscriber) -> None:
    slow_host = Subscriber()  # another host (port): its lanes are its own
    try:
        for number in range(8):  # every lane of that server
            name = f"slow{number}"
            assert slow_host.subscribe(hub.url, TOPIC, name)[0] == 202
            slow_host.behaviour[name].delivery_delay = 5
        subscribed(hub, subscriber, "huge")
        subscriber.behaviour["huge"].huge_answer = True
        subscribed(hub, subscriber, "quick")
        assert hub.settle(lambda: all(slow_host.verified(f"slow{n}") for n in range(8)))
        hub.change("for everyone")
        began = time.monotonic()
        deadline = began + 10
        while not subscriber.received("quick") and time.monotonic() < deadline:
            hub.worker.tick()  # no drain: the slow ones are still under way
            time.sleep(0.05)
        assert subscriber.received("quick") and subscriber.received("huge")
        assert subscriber.received("quick")[0].arrived - began < 5  # before any slow one answered
        hub.worker.drain()
        assert all(slow_host.received(f"slow{n}") for n in range(8))
        assert hub.status()["hub"]["failing"] == []  # a 200 with an endless body is a delivery
    finally:
        slow_host.stop()


@BOTH_BACKENDS
def test_subscriptions_survive_a_restart(hub: Hub, subscriber: Subscriber) -> None:
    subscribed(hub, subscriber, "kept", secret=True)
    hub.worker.close()
    hub.worker = hub.new_worker()  # a new process: the same data folder (or database)
    hub.change("after the restart")
    assert hub.settle(lambda: subscriber.received("kept"))
    (notification,) = subscriber.received("kept")
    assert signature_ok(
        notification.headers["x-hub-signature"], subscriber.secrets["kept"], notification.body
    )


def test_status_counts_subscriptions_per_topic(hub: Hub, subscriber: Subscriber) -> None:
    subscribed(hub, subscriber, "s1")
    subscribed(hub, subscriber, "s2")
    subscribed(hub, subscriber, "s3", topic=f"{BASE_URL}/feed.rss")
    assert hub.status()["hub"]["topics"] == [
        {"topic": TOPIC, "subscriptions": 2},
        {"topic": f"{BASE_URL}/feed.rss", "subscriptions": 1},
    ]
    page = hub.server.get("/status").text
    assert "WebSub hub" in page and TOPIC in page


def test_the_hub_can_be_off(site: SiteFolder, serve: Callable[..., Server]) -> None:
    site.add("2022-04-01-first.md", post_text(title="first"))
    server = serve(site.config(websub={"builtin_hub": False}))
    assert server.get("/websub", method="POST").status == 404
    feed = server.get("/feeds/news.atom")
    assert links(feed.headers["link"]) == {"self": [TOPIC]} and b'rel="hub"' not in feed.body
    assert json.loads(server.get("/status.json").body)["hub"] is None
