"""WebSub publishing: every feed says where its hubs are and what its own URL is (discovery,
the Recommendation's section 4), and outside hubs are told of every change (publish pings)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from urllib.parse import parse_qs

import feedparser
import pytest

from feedhub.errors import ConfigError
from feedhub.limits import RETRY_FIRST_SECONDS
from feedhub.site import open_site
from feedhub.storage import open_storage
from feedhub.websub.callbacks import CallbackClient
from feedhub.websub.hub import HubWorker
from feedhub.websub.store import HubStore
from tests.helpers import BASE_URL, BOTH_BACKENDS, FrozenClock, Server, SiteFolder, post_text, wait_for
from tests.websub_peers import Subscriber, links

HUB = f"{BASE_URL}/websub"
OUTSIDE = "https://pubsubhubbub.example/"
FEEDS = [
    ("/feed.atom", f"{BASE_URL}/feed.atom"),
    ("/feed.xml", f"{BASE_URL}/feed.atom"),  # jekyll-feed's name of the same feed
    ("/feed.rss", f"{BASE_URL}/feed.rss"),
    ("/feed.json", f"{BASE_URL}/feed.json"),
    ("/feeds/news.atom", f"{BASE_URL}/feeds/news.atom"),
    ("/feeds/news.rss", f"{BASE_URL}/feeds/news.rss"),
    ("/feeds/news.json", f"{BASE_URL}/feeds/news.json"),
    ("/feeds/%E5%9B%BD%E5%86%85.atom", f"{BASE_URL}/feeds/%E5%9B%BD%E5%86%85.atom"),
]


@pytest.fixture
def server(site: SiteFolder, serve: Callable[..., Server]) -> Server:
    for number in range(3):
        site.add(f"2022-04-0{number + 1}-p{number}.md", post_text(title=f"post {number}"))
    site.add("2022-04-01-cn.md", post_text(title="国内新闻", categories="国内"))
    return serve(site.config(feed_entries=2, websub={"hubs": [OUTSIDE]}))


def document_links(body: bytes, path: str) -> dict[str, list[str]]:
    """The hub and self links the document itself carries, as a reader finds them."""
    if path.endswith(".json"):
        document = json.loads(body)
        return {
            "hub": [hub["url"] for hub in document.get("hubs", []) if hub["type"] == "WebSub"],
            "self": [document["feed_url"]],
        }
    found: dict[str, list[str]] = {}
    for link in feedparser.parse(body).feed.get("links", []):
        if link.get("rel") in ("hub", "self"):
            found.setdefault(link["rel"], []).append(link["href"])
    return found


@pytest.mark.parametrize(("path", "own_url"), FEEDS)
def test_every_feed_names_its_hubs_and_itself(server: Server, path: str, own_url: str) -> None:
    reply = server.get(path)
    assert reply.status == 200
    assert links(reply.headers["link"]) == {"hub": [HUB, OUTSIDE], "self": [own_url]}
    assert document_links(reply.body, path) == {"hub": [HUB, OUTSIDE], "self": [own_url]}
    # a 304 says the same, and so does the gzipped answer
    again = server.get(path, {"If-None-Match": reply.headers["etag"]})
    assert again.status == 304 and again.headers["link"] == reply.headers["link"]
    assert server.get(path, {"Accept-Encoding": "gzip"}).headers["link"] == reply.headers["link"]


@pytest.mark.parametrize("fmt", ["atom", "rss", "json"])
def test_later_pages_name_only_themselves(server: Server, fmt: str) -> None:
    reply = server.get(f"/feed.{fmt}?page=2")
    assert links(reply.headers["link"]) == {"self": [f"{BASE_URL}/feed.{fmt}?page=2"]}
    assert b"websub" not in reply.body and b'"hubs"' not in reply.body


def test_pages_and_opml_carry_no_hub(server: Server) -> None:
    for path in ("/", "/category/news.html", "/opml"):
        assert "link" not in server.get(path).headers


def test_outside_hubs_only(site: SiteFolder, serve: Callable[..., Server]) -> None:
    site.add("2022-04-01-p.md", post_text(title="p"))
    server = serve(site.config(websub={"builtin_hub": False, "hubs": [OUTSIDE]}))
    assert links(server.get("/feeds/news.rss").headers["link"])["hub"] == [OUTSIDE]


@pytest.mark.parametrize(
    "hubs", [["ftp://hub.example/"], ["https://hub.example/<x>"], "https://hub.example/", [{"url": "x"}]]
)
def test_outside_hubs_must_be_plain_http_urls(site: SiteFolder, hubs: object) -> None:
    with pytest.raises(ConfigError, match=r"websub\.hubs: must be a list of http\(s\) URLs"):
        site.config(websub={"hubs": hubs})


def test_websub_settings_are_checked(site: SiteFolder) -> None:
    with pytest.raises(
        Exception, match=r"websub\.builtin_hubs: unknown key \(did you mean 'builtin_hub'\?\)"
    ):
        site.config(websub={"builtin_hubs": True})
    with pytest.raises(ConfigError, match=r"websub\.max_lease_seconds: must be between 7200"):
        site.config(websub={"min_lease_seconds": 7200, "max_lease_seconds": 3600})
    settings = site.config(websub={"min_lease_seconds": 60, "lease_seconds": 120}).websub
    assert (settings.min_lease_seconds, settings.lease_seconds) == (60, 120)


@pytest.fixture
def outside_hub() -> Iterator[Subscriber]:
    peer = Subscriber()  # takes POSTs and records them, as a hub's publish endpoint would
    yield peer
    peer.stop()


@BOTH_BACKENDS
def test_outside_hubs_are_told_of_each_changed_topic_and_retried(
    site: SiteFolder, serve: Callable[..., Server], outside_hub: Subscriber
) -> None:
    site.add("2022-04-01-p.md", post_text(title="p"))
    site.add("2022-04-01-o.md", post_text(title="o", categories="other"))
    hub_url = outside_hub.callback("publish")
    config = site.config(websub={"builtin_hub": False, "hubs": [hub_url]})
    serve(config)
    clock = FrozenClock(1_790_000_000.0)
    worker = HubWorker(
        open_site(config), HubStore(open_storage(config).state), CallbackClient("test", False), clock
    )
    try:

        def settled(until: Callable[[], object]) -> object:
            return wait_for(lambda: (worker.tick(), worker.drain(), until())[-1])

        worker.tick()  # marks what was there before
        outside_hub.behaviour["publish"].delivery_statuses = [503]  # the first ping fails
        site.add("2022-05-01-new.md", post_text(title="new", date="2022-05-01 10:00:00"))
        assert settled(lambda: len(outside_hub.received("publish")) >= 6)
        told = [parse_qs(ping.body.decode()) for ping in outside_hub.received("publish")]
        assert all(ping["hub.mode"] == ["publish"] for ping in told)
        topics = sorted(ping["hub.url"][0] for ping in told)
        expected = [f"{BASE_URL}/feed.{fmt}" for fmt in ("atom", "json", "rss")]
        expected += [f"{BASE_URL}/feeds/news.{fmt}" for fmt in ("atom", "json", "rss")]
        assert sorted(set(topics)) == sorted(expected)  # the category untouched is not named
        assert len(told) == 6  # the failed one waits for its backoff
        clock.now += RETRY_FIRST_SECONDS
        assert settled(lambda: len(outside_hub.received("publish")) == 7)
    finally:
        worker.close()
