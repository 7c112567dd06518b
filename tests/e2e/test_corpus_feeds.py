"""Every feed served for the finews corpus, checked by tools nobody on the project wrote."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

import feedparser
import pytest

from tests.feedcheck import jsonfeed_validate, w3c_validate
from tests.helpers import ServeProcess, SiteFolder, corpus_posts

PUBLIC = "https://finews.withounder.com"


@pytest.fixture(scope="module")
def corpus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    folder = SiteFolder(tmp_path_factory.mktemp("finews"))
    posts = corpus_posts(folder.root)
    config = folder.write_config(
        title="金融消息",
        base_url=PUBLIC,
        language="zh-CN",
        posts_dir=str(posts),
        feed_entries=50,
        # the built-in hub's link and two outside hubs': every feed carries them for the checkers
        websub={"hubs": ["https://pubsubhubbub.appspot.com/", "https://websub.example/hub"]},
    )
    server = ServeProcess(config, folder.root / "serve.log")
    yield server
    assert server.stop() == 0


def every_feed_page(server: ServeProcess, fmt: str) -> Iterator[tuple[str, bytes]]:
    """(public URL, body) of every page of every feed the OPML lists, following `next` links."""
    opml = ElementTree.fromstring(server.get(f"/opml?format={fmt}").body)
    for outline in opml.findall("./body/outline"):
        url = outline.get("xmlUrl")
        while url:
            reply = server.get(url.removeprefix(PUBLIC))
            assert reply.status == 200, url
            yield url, reply.body
            url = next_url(fmt, reply.body)


def next_url(fmt: str, body: bytes) -> str | None:
    if fmt == "json":
        return json.loads(body).get("next_url")
    links = feedparser.parse(body).feed.get("links", [])
    return next((link.href for link in links if link.rel == "next"), None)


def test_every_category_has_feeds(corpus_server: ServeProcess) -> None:
    pages = dict(every_feed_page(corpus_server, "atom"))
    assert sorted(pages) == [
        f"{PUBLIC}/feed.atom",
        f"{PUBLIC}/feed.atom?page=2",
        f"{PUBLIC}/feed.atom?page=3",
        f"{PUBLIC}/feeds/emnews.atom",
        f"{PUBLIC}/feeds/emnews.atom?page=2",
        f"{PUBLIC}/feeds/emnews.atom?page=3",
        f"{PUBLIC}/feeds/sitenews.atom",
    ]
    entries = [entry for body in pages.values() for entry in feedparser.parse(body).entries]
    site_entries = [
        e for url, body in pages.items() if "/feed.atom" in url for e in feedparser.parse(body).entries
    ]
    assert len(site_entries) == 111 and len({entry.id for entry in site_entries}) == 111
    assert len(entries) == 111 + 110 + 1


@pytest.mark.parametrize("fmt", ["atom", "rss"])
def test_feeds_read_cleanly_in_feedparser(corpus_server: ServeProcess, fmt: str) -> None:
    for url, body in every_feed_page(corpus_server, fmt):
        parsed = feedparser.parse(body)
        assert not parsed.bozo, (url, parsed.get("bozo_exception"))
        assert parsed.version == {"atom": "atom10", "rss": "rss20"}[fmt]
        for entry in parsed.entries:
            assert entry.title and entry.id and entry.link.startswith(PUBLIC)
            assert entry.published.endswith(("+08:00", "+0800"))


@pytest.mark.parametrize("fmt", ["atom", "rss"])
def test_w3c_validator_finds_no_errors(corpus_server: ServeProcess, fmt: str, tmp_path: Path) -> None:
    failures = []
    for number, (url, body) in enumerate(every_feed_page(corpus_server, fmt)):
        saved = tmp_path / f"{number}.{fmt}"
        saved.write_bytes(body)
        report = w3c_validate(saved, url)
        if report["errors"]:
            failures.append((url, report["events"]))
    assert failures == []


def test_json_feeds_match_the_json_feed_schema(corpus_server: ServeProcess, tmp_path: Path) -> None:
    for number, (url, body) in enumerate(every_feed_page(corpus_server, "json")):
        saved = tmp_path / f"{number}.json"
        saved.write_bytes(body)
        result = jsonfeed_validate(saved)
        assert result.returncode == 0, (url, result.stdout)
