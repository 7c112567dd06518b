"""Web page sources: a listing page without a feed, read by the source's CSS selectors."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import yaml

from feedhub.aggregator.entries import ParseError
from feedhub.aggregator.html_page import parse_html_page
from feedhub.aggregator.sources import HtmlPage, SourceType, load_sources
from feedhub.errors import ConfigError
from feedhub.posts import read_post_file
from tests.helpers import SiteFolder
from tests.test_full_text import ARTICLE
from tests.upstream import Upstream

SHANGHAI = ZoneInfo("Asia/Shanghai")
PAGE_URL = "https://finance.news.example/roll/index.html"
# Modelled on a Chinese finance portal's rolling news list: GBK, a list of blocks, dates in words.
LISTING = """<!DOCTYPE html><html><head><meta charset="gbk"><title>滚动新闻</title></head><body>
<div class="nav"><a href="/">首页</a></div>
<ul class="news-list">
  <li class="item">
    <a class="title" href="/a/20211208/1.html">央行：保持流动性合理充裕</a>
    <span class="time">2021年12月08日 22:07</span>
    <p class="digest">央行今日开展<b>逆回购</b>操作 &amp; 市场平稳。<script>steal()</script></p>
    <img class="thumb" src="//img.news.example/1.jpg">
  </li>
  <li class="item">
    <a class="title" href="https://other.example/b.html">Markets close higher</a>
    <span class="time"><time datetime="2021-12-08T14:00:00Z">yesterday</time></span>
  </li>
  <li class="item ad"><span>广告</span></li>
</ul>
<div class="footer">版权所有</div></body></html>"""
PAGE = HtmlPage(
    "ul.news-list li.item",
    {
        "title": "a.title",
        "link": "a.title@href",
        "date": "span.time",
        "summary": "p.digest",
        "image": "img.thumb@src",
    },
    "%Y年%m月%d日 %H:%M",
)


def parse(page: HtmlPage = PAGE, body: str = LISTING):
    return parse_html_page(body.encode("gbk"), {"content-type": "text/html"}, PAGE_URL, page, SHANGHAI)


def test_blocks_and_fields_are_read_by_their_selectors() -> None:
    feed = parse()
    first, second = feed.entries
    assert first.title == "央行：保持流动性合理充裕"  # GBK, as the page's meta says
    assert first.link == "https://finance.news.example/a/20211208/1.html"
    assert first.published == datetime(2021, 12, 8, 22, 7, tzinfo=SHANGHAI)
    assert first.html.startswith('<p><img src="https://img.news.example/1.jpg" alt=""></p>')
    assert "<b>逆回购</b>" in first.html and "&amp; 市场平稳" in first.html and "steal" not in first.html
    assert second.link == "https://other.example/b.html"
    assert second.published is None  # "yesterday" is no date: the time it was first seen
    assert feed.warning == "1 of 3 items skipped: no title ('a.title')"
    # an attribute of an element inside the block: the date a <time> element gives
    dated = parse(HtmlPage(PAGE.items, {**PAGE.fields, "date": "time@datetime"}))
    assert dated.entries[1].published == datetime(2021, 12, 8, 22, 0, tzinfo=SHANGHAI)


def test_a_layout_change_is_an_error_naming_the_selector() -> None:
    with pytest.raises(ParseError, match=r"items: 'ul.news-list li.item' matched nothing on the page"):
        parse(body="<html><body><div class='new-layout'></div></body></html>")
    with pytest.raises(ParseError, match=r"fields.title: 'h3 a' matched nothing in any of 3 blocks"):
        parse(HtmlPage(PAGE.items, {**PAGE.fields, "title": "h3 a"}))


def test_hostile_pages_are_an_error_or_text_never_a_crash() -> None:
    for body in ("", "\x00\x00", "<" * 100_000, "<div>" * 50_000 + "<li class=item><a class=title>x</a>"):
        try:
            feed = parse(HtmlPage("li.item", {"title": "a.title"}), body)
        except ParseError:
            continue
        assert all("<" not in entry.title for entry in feed.entries)


def write_sources(site: SiteFolder, *sources: dict[str, object]) -> None:
    (site.root / "sources.yaml").write_text(yaml.safe_dump({"sources": list(sources)}), "utf-8")


def test_an_html_source_is_configured_with_selectors(site: SiteFolder) -> None:
    write_sources(
        site,
        {
            "id": "roll",
            "type": "html",
            "url": PAGE_URL,
            "category": "wire",
            "items": PAGE.items,
            "fields": dict(PAGE.fields),
            "date_format": PAGE.date_format,
        },
    )
    (source,) = load_sources(site.config())
    assert source.type is SourceType.HTML and source.html_page == PAGE and source.json_api is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"items": "li..x", "fields": {"title": "a"}}, "items: 'li..x' is not a CSS selector"),
        ({"items": "li", "fields": {"title": "a", "content": "p"}}, "fields.content: is not a field"),
        ({"items": "li", "fields": {"link": "a@href"}}, "fields.title: is required"),
        ({"items": "li", "fields": {"title": "a"}, "date_format": "YYYY"}, "date_format: must be a strptime"),
    ],
)
def test_html_source_mistakes_name_the_source_and_the_key(
    site: SiteFolder, extra: dict[str, object], message: str
) -> None:
    write_sources(site, {"id": "bad", "type": "html", "url": PAGE_URL, "category": "wire", **extra})
    with pytest.raises(ConfigError, match="source 'bad': ") as caught:
        load_sources(site.config())
    assert message in str(caught.value)


def test_a_listing_page_with_full_text_is_polled_like_a_feed(site: SiteFolder, upstream: Upstream) -> None:
    listing = LISTING.replace("/a/20211208/1.html", "/a/1.html").replace(
        "https://other.example/b.html", "/a/2.html"
    )
    upstream.feed("/roll/index.html", listing.encode("gbk"), "text/html; charset=gbk")
    for number in (1, 2):
        upstream.feed(f"/a/{number}.html", ARTICLE.format(title=f"Story {number}").encode(), "text/html")
    source = {
        "id": "roll",
        "type": "html",
        "url": upstream.url("/roll/index.html"),
        "category": "wire",
        "items": PAGE.items,
        "fields": dict(PAGE.fields),
        "date_format": PAGE.date_format,
        "full_text": True,
        "full_text_delay": 0,
    }
    write_sources(site, source)
    config = site.write_config(language="zh-CN")
    command = [sys.executable, "-m", "feedhub", "poll", "--once", "--config", str(config)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    posts = [read_post_file(site.posts, path.name, SHANGHAI) for path in sorted(site.posts.glob("*.md"))]
    bodies = {file.post.title: file.post.body for file in posts if file and file.post}
    assert set(bodies) == {"央行：保持流动性合理充裕", "Markets close higher"}
    assert all("small firms" in body for body in bodies.values())  # each linked article's full text
    again = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and again.stdout.splitlines()[0].split()[:2] == ["roll", "not-modified"]
