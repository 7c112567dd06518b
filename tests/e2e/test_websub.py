"""WebSub end to end: `feedhub serve` (its scheduler process runs the hub) and an independent
subscriber on loopback; a post file written to the folder reaches the subscriber's callback.
With PostgreSQL, two hosts take subscriptions and exactly one of them delivers each change."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from feedhub.aggregator.lock import holder_pid
from tests.e2e.test_several_machines import node_config
from tests.helpers import BASE_URL, ServeProcess, SiteFolder, post_text, wait_for
from tests.postgres import PostgresServer
from tests.upstream import item, rss
from tests.websub_peers import Hub, Subscriber, links, signature_ok

TOPIC = f"{BASE_URL}/feeds/news.atom"


@pytest.fixture
def subscriber() -> Iterator[Subscriber]:
    peer = Subscriber()
    yield peer
    peer.stop()


def test_a_new_post_file_is_pushed_to_the_subscriber(
    site: SiteFolder, subscriber: Subscriber, tmp_path: Path
) -> None:
    site.add("2022-04-01-first.md", post_text(title="first"))
    config = site.write_config(websub={"allow_private_callbacks": True})
    server = ServeProcess(config, tmp_path / "serve.log")
    try:
        discovered = links(server.get("/feeds/news.atom").headers["link"])
        assert discovered["self"] == [TOPIC] and discovered["hub"] == [f"{BASE_URL}/websub"]
        hub = server.url + "/websub"  # base_url's host is not this test's: the same hub, on loopback
        assert subscriber.subscribe(hub, TOPIC, "e2e", secret=True)[0] == 202
        assert wait_for(lambda: subscriber.verified("e2e"), timeout=30), server.log()

        site.add("2022-05-01-pushed.md", post_text(title="pushed", date="2022-05-01 10:00:00"))
        assert wait_for(lambda: subscriber.received("e2e"), timeout=30), server.log()
        (pushed,) = subscriber.received("e2e")
        assert b"pushed" in pushed.body and pushed.body == server.get("/feeds/news.atom").body
        assert signature_ok(pushed.headers["x-hub-signature"], subscriber.secrets["e2e"], pushed.body)

        # The hub's process killed with -9: `feedhub serve` starts it again; the subscription stays.
        pid = holder_pid(site.root / "data")
        assert pid is not None and pid != server.process.pid
        os.kill(pid, signal.SIGKILL)
        assert wait_for(lambda: holder_pid(site.root / "data") not in (None, pid), timeout=60), server.log()
        site.add("2022-05-02-again.md", post_text(title="again", date="2022-05-02 10:00:00"))
        assert wait_for(lambda: len(subscriber.received("e2e")) == 2, timeout=30), server.log()
        assert b"again" in subscriber.received("e2e")[1].body
    finally:
        server.stop()


def test_with_several_hosts_one_delivers_each_change(
    site: SiteFolder, subscriber: Subscriber, postgres: PostgresServer, tmp_path: Path
) -> None:
    site.database = postgres.new_database()
    site.add("2022-04-01-first.md", post_text(title="first"))
    hosts = [
        ServeProcess(
            node_config(site, name, websub={"allow_private_callbacks": True}), tmp_path / f"{name}.log"
        )
        for name in ("a", "b")
    ]
    try:
        for number, host in enumerate(hosts):  # each host takes one
            assert subscriber.subscribe(host.url + "/websub", TOPIC, f"via-{number}")[0] == 202
        assert wait_for(lambda: subscriber.verified("via-0") and subscriber.verified("via-1"), timeout=30)
        site.add("2022-05-01-shared.md", post_text(title="shared", date="2022-05-01 10:00:00"))
        assert wait_for(lambda: subscriber.received("via-0") and subscriber.received("via-1"), timeout=30), (
            hosts[0].log() + hosts[1].log()
        )
        time.sleep(2)  # what a second deliverer would send has had time to come
        assert len(subscriber.received("via-0")) == len(subscriber.received("via-1")) == 1
    finally:
        for host in hosts:
            host.stop()


def test_an_upstream_hub_pushes_through_feedhub_serve(site: SiteFolder, tmp_path: Path) -> None:
    hub = Hub()
    try:
        hub.feed = rss(item("polled", guid="1"))
        site.write_sources({"id": "up", "url": hub.topic, "allow_private_addresses": True})
        server = ServeProcess(site.write_config(), tmp_path / "serve.log")
        hub.reach = lambda url: url.replace(BASE_URL, server.url)
        try:
            assert wait_for(lambda: hub.verified, timeout=60), server.log()
            assert hub.publish(rss(item("pushed", guid="2"), item("polled", guid="1"))) == [202]
            assert wait_for(lambda: b"pushed" in server.get("/feeds/news.atom").body, timeout=30), (
                server.log()
            )
            status = json.loads(server.get("/status.json").body)
            assert status["sources"][0]["push"].startswith("push subscribed until")
        finally:
            server.stop()
    finally:
        hub.stop()
