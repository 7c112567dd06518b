"""Feeds built from a real index, parsed back with feedparser field by field."""

from __future__ import annotations

import json

import feedparser
import pytest

from feedhub.feeds import render_feed
from feedhub.site import Site
from tests.helpers import BASE_URL, SiteFolder, open_index

ORIGINAL = "http://finance.eastmoney.com/news/1354,202112082206734275.html"


@pytest.fixture
def news(site: SiteFolder) -> Site:
    site.add(
        "2021-12-08-202112082206734275.md",
        title="康斯特：MEMS传感器项目开发进度比预期的要顺利",
        date="2021-12-08 10:35:30",
        categories="emnews",
        tags="东财滚动新闻",
        body=f"康斯特表示，<b>项目</b>顺利。\n\n<{ORIGINAL}>\n\n[返回东财滚动新闻](../emnews/)\n[返回首页](../)",
    )
    site.add(
        "2021-12-08-202112082206717618.md",
        title="FF首次披露IPO后财务状况",
        date="2021-12-08 10:20:24 +0800",
        categories="emnews",
        tags="东财滚动新闻",
        author="ZNing",
        last_modified_at="2021-12-09 09:00:00 +0800",
        body="FF正文。",
    )
    site.add(
        "2021-12-01-init.md",
        title="开站大吉",
        date="2021-12-01 13:33:50",
        categories="sitenews",
        tags="站长消息",
        body="祝贺开站",
    )
    config = site.config(title="金融消息", language="zh-CN", categories={"sitenews": "站长"})
    index = open_index(config)
    index.sync_all()
    return index.site


def build(site: Site, fmt: str, slug: str | None = None, page: int = 1) -> bytes:
    feed_page = site.feed_page(slug, page)
    assert feed_page is not None
    return render_feed(fmt, site.info, feed_page)


def test_atom_fields(news: Site) -> None:
    raw = build(news, "atom", "emnews")
    parsed = feedparser.parse(raw)
    assert not parsed.bozo and parsed.version == "atom10"
    feed = parsed.feed
    assert feed.title == "东财滚动新闻 · 金融消息"
    assert feed.id == f"{BASE_URL}/feeds/emnews.atom"
    assert feed.language == "zh-CN"
    # the feed is as new as its newest entry, including an entry's own last_modified_at
    assert feed.updated == "2021-12-09T09:00:00+08:00"
    links = {link.rel: link.href for link in feed.links}
    assert links["self"] == links["first"] == links["last"] == f"{BASE_URL}/feeds/emnews.atom"
    assert links["alternate"] == f"{BASE_URL}/category/emnews.html"
    assert feed.generator == "feedhub"

    first, second = parsed.entries
    assert first.title == "康斯特：MEMS传感器项目开发进度比预期的要顺利"
    assert first.id.startswith("urn:uuid:")
    assert first.published == first.updated == "2021-12-08T10:35:30+08:00"
    entry_links = {link.rel: (link.href, link.type) for link in first.links}
    assert entry_links["alternate"] == (f"{BASE_URL}/emnews/2021/12/08/202112082206734275.html", "text/html")
    assert entry_links["via"] == (ORIGINAL, "text/html")
    assert first.tags[0].term == "emnews"
    assert first.tags[0].label == "东财滚动新闻"
    assert first.tags[0].scheme == f"{BASE_URL}/category/"
    assert first.content[0].type == "text/html"
    assert "康斯特表示，<b>项目</b>顺利。" in first.content[0].value
    assert f'href="{BASE_URL}/emnews/"' in first.content[0].value
    assert first.summary == "康斯特表示，项目顺利。"
    assert first.summary_detail.type == "text/plain"

    assert second.published == "2021-12-08T10:20:24+08:00"
    assert second.updated == "2021-12-09T09:00:00+08:00"
    assert second.author == "ZNing"
    assert "via" not in {link.rel for link in second.links}


def test_rss_fields(news: Site) -> None:
    raw = build(news, "rss", "emnews")
    parsed = feedparser.parse(raw)
    assert not parsed.bozo and parsed.version == "rss20"
    assert parsed.feed.title == "东财滚动新闻 · 金融消息"
    assert parsed.feed.link == f"{BASE_URL}/category/emnews.html"
    assert parsed.feed.language == "zh-CN"
    assert b"<lastBuildDate>Thu, 09 Dec 2021 09:00:00 +0800</lastBuildDate>" in raw
    assert b'<atom:link href="https://news.example.org/feeds/emnews.rss" rel="self"' in raw
    entry = parsed.entries[0]
    assert entry.id.startswith("urn:uuid:") and entry.guidislink is False
    assert entry.link == f"{BASE_URL}/emnews/2021/12/08/202112082206734275.html"
    assert entry.published == "Wed, 08 Dec 2021 10:35:30 +0800"
    assert entry.tags[0].term == "东财滚动新闻" and entry.tags[0].scheme == f"{BASE_URL}/category/"
    assert entry.summary == "康斯特表示，项目顺利。"
    assert "<b>项目</b>" in entry.content[0].value
    # RSS's <author> must be an e-mail address: a name goes into Dublin Core's creator
    assert "author" not in entry and parsed.entries[1].author == "ZNing"
    assert b"<dc:creator>ZNing</dc:creator>" in raw and raw.count(b"<dc:creator>") == 1


def test_json_feed_fields(news: Site) -> None:
    document = json.loads(build(news, "json", "emnews"))
    assert document["version"] == "https://jsonfeed.org/version/1.1"
    assert document["title"] == "东财滚动新闻 · 金融消息"
    assert document["home_page_url"] == f"{BASE_URL}/category/emnews.html"
    assert document["feed_url"] == f"{BASE_URL}/feeds/emnews.json"
    assert document["language"] == "zh-CN"
    assert "next_url" not in document
    item = document["items"][0]
    assert item["url"] == f"{BASE_URL}/emnews/2021/12/08/202112082206734275.html"
    assert item["external_url"] == ORIGINAL
    assert item["date_published"] == "2021-12-08T10:35:30+08:00"
    assert item["tags"] == ["东财滚动新闻"]
    assert item["summary"] == "康斯特表示，项目顺利。"
    assert "<b>项目</b>" in item["content_html"]
    assert document["items"][1]["authors"] == [{"name": "ZNing"}]


def test_ids_are_the_same_in_every_format(news: Site) -> None:
    atom = [entry.id for entry in feedparser.parse(build(news, "atom")).entries]
    rss = [entry.id for entry in feedparser.parse(build(news, "rss")).entries]
    items = [item["id"] for item in json.loads(build(news, "json"))["items"]]
    assert atom == rss == items and len(set(atom)) == 3


def test_site_feed_and_configured_titles(news: Site) -> None:
    parsed = feedparser.parse(build(news, "atom"))
    assert parsed.feed.title == "金融消息"
    assert [entry.title for entry in parsed.entries] == [
        "康斯特：MEMS传感器项目开发进度比预期的要顺利",
        "FF首次披露IPO后财务状况",
        "开站大吉",
    ]
    assert parsed.entries[2].tags[0].label == "站长"  # the config's title wins over the tag
    assert {tag.term for tag in parsed.entries[2].tags} == {"sitenews", "站长消息"}


def test_output_is_deterministic(news: Site) -> None:
    for fmt in ("atom", "rss", "json"):
        assert build(news, fmt) == build(news, fmt)


def test_rfc5005_paging(site: SiteFolder) -> None:
    for day in range(1, 8):
        site.add(f"2022-01-0{day}-p.md", title=f"p{day}", date=f"2022-01-0{day} 12:00:00", categories="c")
    config = site.config(feed_entries=3)
    index = open_index(config)
    index.sync_all()
    news = index.site
    parsed = feedparser.parse(build(news, "atom", "c", page=2))
    links = {link.rel: link.href for link in parsed.feed.links}
    url = f"{BASE_URL}/feeds/c.atom"
    assert links == {
        "self": f"{url}?page=2",
        "first": url,
        "last": f"{url}?page=3",
        "previous": url,
        "next": f"{url}?page=3",
        "alternate": f"{BASE_URL}/category/c.html",
    }
    assert [entry.title for entry in parsed.entries] == ["p4", "p3", "p2"]
    assert parsed.feed.updated == "2022-01-07T12:00:00+08:00"  # the feed's newest, on every page
    rss = build(news, "rss", "c", page=3)
    assert b'<atom:link rel="previous" href="https://news.example.org/feeds/c.rss?page=2"/>' in rss
    assert b'rel="next"' not in rss
    assert json.loads(build(news, "json", "c"))["next_url"] == f"{BASE_URL}/feeds/c.json?page=2"
    assert news.feed_page("c", 4) is None and news.feed_page("c", 0) is None
    assert news.feed_page("nope", 1) is None


def test_empty_site_feed_is_valid(site: SiteFolder) -> None:
    config = site.config()
    index = open_index(config)
    index.sync_all()
    parsed = feedparser.parse(build(index.site, "atom"))
    assert not parsed.bozo and parsed.entries == []
    assert parsed.feed.updated == "1970-01-01T00:00:00+00:00"


def test_empty_bodies_and_configured_empty_categories(site: SiteFolder) -> None:
    site.add("2022-01-01-empty.md", text='---\ntitle: "Empty"\ndate: 2022-01-01\ncategories: a\n---\n')
    site.add(
        "2022-01-02-via.md",
        text='---\ntitle: "Via"\ndate: 2022-01-02\ncategories: a\n---\n<http://x.example/>',
    )
    config = site.config(categories={"later": "Coming soon"})
    index = open_index(config)
    index.sync_all()
    news = index.site
    atom = build(news, "atom", "a")
    assert b"<content" in atom and atom.count(b"<content") == 1 and b"<summary" not in atom
    rss = feedparser.parse(build(news, "rss", "a"))
    assert not rss.bozo and [entry.title for entry in rss.entries] == ["Via", "Empty"]
    assert json.loads(build(news, "json", "a"))["items"][1]["content_html"] == ""
    # a category the config names exists before its first post, so readers can subscribe early
    empty = feedparser.parse(build(news, "atom", "later"))
    assert empty.feed.title == "Coming soon · Example News" and empty.entries == []
