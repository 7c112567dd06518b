"""The HTTP interface, over a real server on 127.0.0.1 and a plain HTTP client."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable
from datetime import datetime
from email.utils import parsedate_to_datetime
from urllib.parse import quote
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

import feedparser
import pytest
from lxml import etree

from tests.helpers import BASE_URL, BOTH_BACKENDS, FrozenClock, Server, SiteFolder, post_text, wait_for

SLUGS = ["emnews", "21shijijingjibaodao 21caijingAPP", "anxinguojizhengquan(xianggang)", "国内财经", "a/b"]


@pytest.fixture
def server(site: SiteFolder, serve: Callable[..., Server]) -> Server:
    for number, slug in enumerate(SLUGS):
        site.add(
            f"2021-12-08-post{number}.md",
            title=f"标题 {number}",
            date=f"2021-12-08 10:{number:02d}:00",
            categories=slug,
            tags=f"{slug} 新闻",
            body=f"正文 {number}\n\n<http://example.com/{number}>",
        )
    site.add("2021-12-01-init.md", title="开站大吉", date="2021-12-01 13:33:50", categories="sitenews")
    site.add("-202205262391921712.md", title="", date="'  +0800'", categories="emnews")
    return serve(site.config(language="zh-CN", cache_max_age=120, feed_entries=2))


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/feed.atom", "application/atom+xml; charset=utf-8"),
        ("/feed.xml", "application/atom+xml; charset=utf-8"),
        ("/feed.rss", "application/rss+xml; charset=utf-8"),
        ("/feed.json", "application/feed+json"),
        ("/feeds/emnews.atom", "application/atom+xml; charset=utf-8"),
        ("/feeds/emnews.rss", "application/rss+xml; charset=utf-8"),
        ("/feeds/emnews.json", "application/feed+json"),
        ("/", "text/html; charset=utf-8"),
        ("/category/emnews.html", "text/html; charset=utf-8"),
        ("/opml", "text/x-opml; charset=utf-8"),
    ],
)
def test_content_types_and_caching_headers(server: Server, path: str, content_type: str) -> None:
    reply = server.get(path)
    assert reply.status == 200
    assert reply.headers["content-type"] == content_type
    assert reply.headers["cache-control"] == "public, max-age=120"
    # Atom and RSS go to browsers as XML (for their stylesheet): they vary by Accept too
    shown_to_browsers = content_type.startswith(("application/atom+xml", "application/rss+xml"))
    assert reply.headers["vary"] == ("Accept-Encoding, Accept" if shown_to_browsers else "Accept-Encoding")
    assert re.fullmatch(r'"[0-9a-f]{32}"', reply.headers["etag"])
    assert int(reply.headers["content-length"]) == len(reply.body)


def test_feed_xml_is_the_atom_feed(server: Server) -> None:
    assert server.get("/feed.xml").body == server.get("/feed.atom").body


def test_last_modified_is_the_newest_entry(server: Server) -> None:
    reply = server.get("/feeds/emnews.atom")
    assert parsedate_to_datetime(reply.headers["last-modified"]).isoformat() == "2021-12-08T02:00:00+00:00"


@BOTH_BACKENDS
def test_conditional_get_round_trips(server: Server) -> None:
    first = server.get("/feeds/emnews.atom")
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    again = server.get("/feeds/emnews.atom", {"If-None-Match": etag})
    assert again.status == 304 and again.body == b""
    assert again.headers["etag"] == etag and again.headers["cache-control"] == "public, max-age=120"
    assert server.get("/feeds/emnews.atom", {"If-None-Match": f'"other", {etag}'}).status == 304
    assert server.get("/feeds/emnews.atom", {"If-None-Match": "*"}).status == 304
    assert server.get("/feeds/emnews.atom", {"If-None-Match": '"other"'}).status == 200
    assert server.get("/feeds/emnews.atom", {"If-Modified-Since": modified}).status == 304
    assert (
        server.get("/feeds/emnews.atom", {"If-Modified-Since": "Wed, 08 Dec 2021 01:59:59 GMT"}).status == 200
    )
    # If-None-Match wins over If-Modified-Since
    both = {"If-None-Match": '"other"', "If-Modified-Since": modified}
    assert server.get("/feeds/emnews.atom", both).status == 200


def test_etag_comes_from_the_body_not_the_build(server: Server, site: SiteFolder, serve) -> None:
    etag = server.get("/feed.rss").headers["etag"]
    restarted = serve(site.config(language="zh-CN", cache_max_age=120, feed_entries=2))
    assert restarted.get("/feed.rss").headers["etag"] == etag


def test_head(server: Server) -> None:
    get = server.get("/feeds/emnews.rss")
    head = server.get("/feeds/emnews.rss", method="HEAD")
    assert head.status == 200 and head.body == b""
    for name in ("etag", "content-type", "content-length", "last-modified", "cache-control"):
        assert head.headers[name] == get.headers[name]
    assert (
        server.get("/feeds/emnews.rss", {"If-None-Match": get.headers["etag"]}, method="HEAD").status == 304
    )


def test_gzip_when_accepted(server: Server) -> None:
    plain = server.get("/feed.atom")
    zipped = server.get("/feed.atom", {"Accept-Encoding": "gzip, deflate"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert gzip.decompress(zipped.body) == plain.body
    assert zipped.headers["etag"] != plain.headers["etag"]
    assert (
        server.get("/feed.atom", {"Accept-Encoding": "gzip", "If-None-Match": zipped.headers["etag"]}).status
        == 304
    )
    refused = server.get("/feed.atom", {"Accept-Encoding": "gzip;q=0, identity"})
    assert "content-encoding" not in refused.headers and refused.body == plain.body


@pytest.mark.parametrize("slug", SLUGS)
def test_slugs_are_percent_encoded_and_routed(server: Server, slug: str) -> None:
    encoded = quote(slug, safe="")
    for fmt in ("atom", "rss", "json"):
        reply = server.get(f"/feeds/{encoded}.{fmt}")
        assert reply.status == 200, (slug, fmt)
    parsed = feedparser.parse(server.get(f"/feeds/{encoded}.atom").body)
    assert parsed.feed.title == f"{slug} 新闻 · Example News"
    assert {link.rel: link.href for link in parsed.feed.links}["self"] == f"{BASE_URL}/feeds/{encoded}.atom"
    assert server.get(f"/category/{encoded}.html").status == 200


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/feeds/unknown.atom", 404),
        ("/feeds/Emnews.atom", 404),  # slugs are case-sensitive (TechWeb and Techweb are two)
        ("/feeds/emnews.xml", 404),
        ("/feeds/emnews.atom?page=3", 404),
        ("/feeds/emnews.atom?page=0", 404),
        ("/feeds/emnews.atom?page=two", 400),
        ("/feed.atom?page=5", 404),
        ("/category/unknown.html", 404),
        ("/2021/12/08/nothing.html", 404),
        ("/opml?format=yaml", 400),
    ],
)
def test_not_found_and_bad_requests(server: Server, path: str, status: int) -> None:
    assert server.get(path).status == status


def test_paging_over_http(server: Server) -> None:
    page = feedparser.parse(server.get("/feed.atom?page=2").body)
    links = {link.rel: link.href for link in page.feed.links}
    assert links["self"] == f"{BASE_URL}/feed.atom?page=2"
    assert links["previous"] == f"{BASE_URL}/feed.atom"
    assert links["next"] == f"{BASE_URL}/feed.atom?page=3"
    assert links["last"] == f"{BASE_URL}/feed.atom?page=3"
    titles = [entry.title for entry in page.entries]
    assert titles == ["标题 2", "标题 1"]


def test_pages_carry_language_and_autodiscovery(server: Server) -> None:
    home = server.get("/").text
    assert '<html lang="zh-CN">' in home
    assert (
        '<link rel="alternate" type="application/atom+xml" title="Example News (Atom)" '
        f'href="{BASE_URL}/feed.atom">' in home
    )
    assert "标题 4" in home and "开站大吉" in home
    assert server.get("/").headers["content-security-policy"].startswith("default-src 'none'")

    category = server.get("/category/emnews.html").text
    assert (
        f'type="application/rss+xml" title="emnews 新闻 (RSS)" href="{BASE_URL}/feeds/emnews.rss"' in category
    )
    assert f'href="{BASE_URL}/emnews/2021/12/08/post0.html"' in category


def test_post_pages_live_at_the_feeds_links(server: Server) -> None:
    for entry in feedparser.parse(server.get("/feed.atom?page=1").body).entries:
        path = entry.link.removeprefix(BASE_URL)
        page = server.get(path)
        assert page.status == 200, path
        assert entry.title in page.text
        assert '<html lang="zh-CN">' in page.text
        assert 'rel="alternate" type="application/feed+json"' in page.text
    assert server.get(quote("/21shijijingjibaodao 21caijingapp/2021/12/08/post1.html")).status == 200


def test_jekyll_back_links_redirect_to_the_category_page(server: Server) -> None:
    reply = server.get("/emnews/")
    assert reply.status == 301
    assert reply.headers["location"] == f"{BASE_URL}/category/emnews.html"
    assert server.get("/nothing/").status == 404


def test_opml_lists_every_feed(server: Server) -> None:
    outlines = ElementTree.fromstring(server.get("/opml").body).findall("./body/outline")
    urls = [outline.get("xmlUrl") for outline in outlines]
    assert urls[0] == f"{BASE_URL}/feed.atom"
    expected = {f"{BASE_URL}/feeds/{quote(slug, safe='')}.atom" for slug in [*SLUGS, "sitenews"]}
    assert set(urls[1:]) == expected
    rss = ElementTree.fromstring(server.get("/opml?format=rss").body)
    assert rss.get("version") == "2.0"
    assert all(outline.get("xmlUrl").endswith(".rss") for outline in rss.findall("./body/outline"))


@BOTH_BACKENDS
def test_healthz(server: Server) -> None:
    reply = server.get("/healthz")
    health = json.loads(reply.body)
    assert reply.headers["cache-control"] == "no-store"
    assert health["status"] == "ok" and health["index"] == "ready"
    assert (health["posts"], health["categories"]) == (6, 6)
    assert health["skipped"] == [{"file": "-202205262391921712.md", "reason": health["skipped"][0]["reason"]}]
    assert "empty title" in health["skipped"][0]["reason"]


@BOTH_BACKENDS
def test_healthz_reports_a_failing_sync(server: Server, site: SiteFolder) -> None:
    def health() -> dict:
        return json.loads(server.get("/healthz").body)

    site.posts.rename(site.root / "unmounted")
    assert wait_for(lambda: health()["status"] == "degraded")
    assert "the posts folder is missing" in health()["error"]
    # what was published stays published
    assert health()["posts"] == 6
    assert len(feedparser.parse(server.get("/feeds/emnews.atom").body).entries) == 1

    (site.root / "unmounted").rename(site.posts)
    assert wait_for(lambda: health()["status"] == "ok")
    assert health()["error"] is None


@BOTH_BACKENDS
def test_changes_show_up_without_a_restart(server: Server, site: SiteFolder) -> None:
    before = server.get("/feeds/emnews.atom")
    site.add("2021-12-09-new.md", title="新文章", date="2021-12-09 08:00:00", categories="emnews")

    def newest_title() -> str:
        return feedparser.parse(server.get("/feeds/emnews.atom").body).entries[0].title

    assert wait_for(lambda: newest_title() == "新文章")
    assert server.get("/feeds/emnews.atom", {"If-None-Match": before.headers["etag"]}).status == 200

    site.add(
        "2021-12-09-new.md", post_text(title="改过的标题", date="2021-12-09 08:00:00", categories="emnews")
    )
    assert wait_for(lambda: newest_title() == "改过的标题")

    (site.posts / "2021-12-09-new.md").unlink()
    assert wait_for(lambda: newest_title() == "标题 0")
    assert wait_for(lambda: server.get("/emnews/2021/12/09/new.html").status == 404)


@BOTH_BACKENDS
def test_other_feeds_stay_cached_when_one_category_changes(server: Server, site: SiteFolder) -> None:
    etag = server.get("/feeds/sitenews.atom").headers["etag"]
    site.add("2021-12-09-new.md", title="新文章", date="2021-12-09 08:00:00", categories="emnews")
    assert wait_for(lambda: "新文章" in server.get("/feeds/emnews.atom").text)
    assert server.get("/feeds/sitenews.atom", {"If-None-Match": etag}).status == 304


@BOTH_BACKENDS
def test_scheduled_posts_go_live_when_their_date_comes(site: SiteFolder, serve) -> None:
    clock = FrozenClock(datetime(2026, 11, 22, 12, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp())
    site.add("2026-11-22-now.md", title="now", date="2026-11-22 11:00:00", categories="c")
    site.add("2026-11-22-later.md", title="later", date="2026-11-22 12:30:00", categories="c")
    server = serve(site.config(), clock=clock)
    before = server.get("/feeds/c.atom")
    assert [entry.title for entry in feedparser.parse(before.body).entries] == ["now"]
    assert server.get("/c/2026/11/22/later.html").status == 404
    clock.now += 3600
    assert wait_for(
        lambda: server.get("/feeds/c.atom", {"If-None-Match": before.headers["etag"]}).status == 200
    )
    assert [entry.title for entry in feedparser.parse(server.get("/feeds/c.atom").body).entries] == [
        "later",
        "now",
    ]
    assert server.get("/c/2026/11/22/later.html").status == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Accept-Encoding": "gzip"},
        {"Accept-Encoding": "*;q=0, gzip"},
        {"If-None-Match": "ETAG"},
        {"If-None-Match": "ETAG", "Accept-Encoding": "gzip"},
        {"If-Modified-Since": "Wed, 08 Dec 2021 03:00:00 GMT"},
    ],
)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_the_fast_path_answers_as_flask_does(
    server: Server, site: SiteFolder, serve: Callable[..., Server], headers: dict[str, str], method: str
) -> None:
    """A fresh app answers its first request for a URL through Flask and repeats from the cache
    directly (FastPath): the two answers must be the same."""
    drop = {"date", "server", "connection"}
    for path in (
        "/feeds/emnews.atom",
        "/feed.json?page=2",
        "/category/emnews.html",
        "/emnews/2021/12/08/post0.html",
    ):
        etags = {
            encoding: server.get(path, {"Accept-Encoding": encoding}).headers["etag"]
            for encoding in ("identity", "gzip")
        }
        etag = etags["gzip" if "gzip" in headers.get("Accept-Encoding", "") else "identity"]
        wanted = {name: value.replace("ETAG", etag) for name, value in headers.items()}
        fresh = serve(site.config())
        by_flask, *by_fast_path = [fresh.get(path, wanted, method=method) for _ in range(3)]
        for answer in by_fast_path:
            assert (answer.status, answer.body) == (by_flask.status, by_flask.body), path
            assert {k: v for k, v in answer.headers.items() if k not in drop} == {
                k: v for k, v in by_flask.headers.items() if k not in drop
            }, path
        if by_flask.status == 304:
            assert "last-modified" in by_flask.headers or path.endswith(".html"), path


def test_other_query_strings_still_work(server: Server) -> None:
    plain = server.get("/feeds/emnews.atom")
    tracked = server.get("/feeds/emnews.atom?utm_source=reader")
    assert tracked.status == 200 and tracked.body == plain.body


@pytest.mark.parametrize("path", ["/feeds/emnews.atom", "/feed.rss?page=2"])
def test_a_browser_shows_a_feed_as_a_page(server: Server, path: str) -> None:
    """The stylesheet a feed names turns it into a page (libxslt, as browsers run it), and readers
    still get the feed itself."""
    feed = server.get(path).body
    instruction = f'<?xml-stylesheet type="text/xsl" href="{BASE_URL}/feed.xsl"?>'.encode()
    assert feed.split(b"\n")[1] == instruction
    assert not feedparser.parse(feed).bozo
    stylesheet = server.get("/feed.xsl")
    assert stylesheet.headers["content-type"] == "text/xsl; charset=utf-8"
    transform = etree.XSLT(etree.fromstring(stylesheet.body))
    page = str(transform(etree.fromstring(feed)))
    parsed = feedparser.parse(feed)
    assert f"<h1>{parsed.feed.title}</h1>" in page
    assert f'<code id="feed-address">{BASE_URL}{path}</code>' in page
    assert "这是一个订阅源" in page and '<html lang="zh-CN">' in page
    titles = [entry.title for entry in parsed.entries]
    assert titles and all(f">{title}</a>" in page for title in titles)
    assert page.count("<li>") == len(titles)


def test_a_feed_preview_never_runs_what_an_entry_holds(site: SiteFolder, serve) -> None:
    site.add(
        "2021-12-08-x.md",
        title="<script>alert(1)</script>",
        date="2021-12-08 10:00:00",
        body="<b>bold</b> AT&amp;T &amp;lt;b&amp;gt; x",
    )
    server = serve(site.config())
    transform = etree.XSLT(etree.fromstring(server.get("/feed.xsl").body))
    for path in ("/feed.atom", "/feed.rss"):
        page = str(transform(etree.fromstring(server.get(path).body)))
        assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert "<b>" not in page
        # the summary reads as its text, whichever format carried it
        assert "bold AT&amp;T &amp;lt;b&amp;gt; x" in page, page


def test_a_browser_is_sent_a_feed_as_xml_and_a_reader_as_a_feed(server: Server) -> None:
    """Chromium shows application/atom+xml and rss+xml as plain text, and applies a stylesheet
    only to XML: a request that asks for a page gets the same bytes as application/xml."""
    browser = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
    for path, feed_type in (
        ("/feed.atom", "application/atom+xml"),
        ("/feeds/emnews.rss", "application/rss+xml"),
    ):
        for _ in range(2):  # built, then from the cache
            reader = server.get(path, {"Accept": f"{feed_type}, */*;q=0.1"})
            shown = server.get(path, browser)
            assert reader.headers["content-type"].startswith(feed_type)
            assert shown.headers["content-type"] == "application/xml; charset=utf-8"
            assert shown.body == reader.body and "Accept" in shown.headers["vary"]
    assert server.get("/feed.json", browser).headers["content-type"] == "application/feed+json"
