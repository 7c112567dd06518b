"""Parsing upstream feeds into normalized, sanitized entries."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from feedhub.aggregator.entries import ParseError, entry_date, identities, parse_feed
from feedhub.dates import parse_feed_date
from feedhub.limits import MAX_CONTENT_BYTES, MAX_ENCLOSURES, MAX_TITLE_CHARS, MAX_URL_CHARS
from feedhub.posts import Enclosure
from tests.helpers import SHARED
from tests.upstream import item, rss

SHANGHAI = ZoneInfo("Asia/Shanghai")
URL = "https://upstream.example/feed.xml"
REALWORLD = SHARED / "corpus" / "upstream" / "realworld"


def corpus_file(relative: str) -> bytes:
    path = REALWORLD / relative
    if not path.is_file():
        pytest.skip(f"{path} is absent (../shared/corpus/upstream is not beside the checkout)")
    return path.read_bytes()


def parse(body: bytes, headers: dict[str, str] | None = None):
    return parse_feed(body, headers or {}, URL, SHANGHAI)


def test_rss2_entry_fields() -> None:
    feed = parse(
        rss(
            item(
                "Tom &amp; Jerry&#8217;s <b>news</b>",
                guid="g1",
                link="/news/1.html",
                date="Wed, 08 Dec 2021 10:35:30 +0800",
                description='<p onclick="x()">Hi <a href="/a">there</a><script>bad()</script></p>',
                extra=(
                    "<author>editor@example.org (Editor)</author><category>Finance</category>"
                    '<enclosure url="/audio.mp3" type="audio/mpeg" length="123"/>'
                    '<enclosure url="javascript:alert(1)" type="audio/mpeg" length="1"/>'
                ),
            ),
            title="Upstream &amp; Co",
        )
    )
    assert feed.title == "Upstream & Co"
    (entry,) = feed.entries
    assert entry.upstream_id == "g1"
    assert entry.title == "Tom & Jerry’s news"  # plain text: tags stripped, entities decoded
    assert entry.link == "https://upstream.example/news/1.html"
    assert entry.html == '<p>Hi <a href="https://upstream.example/a" rel="noopener noreferrer">there</a></p>'
    assert entry.published == datetime(2021, 12, 8, 10, 35, 30, tzinfo=timezone(timedelta(hours=8)))
    assert entry.author == "editor@example.org (Editor)"
    assert entry.categories == ("Finance",)
    assert entry.enclosures == (Enclosure("https://upstream.example/audio.mp3", "audio/mpeg", 123),)


def test_atom_entry_fields_and_content_over_summary() -> None:
    atom = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://blog.example/posts/">
  <title type="html">My &lt;i&gt;Blog&lt;/i&gt;</title>
  <id>urn:x</id><updated>2022-01-01T00:00:00Z</updated>
  <entry>
    <id>tag:blog.example,2022:1</id>
    <title type="html">Hello &lt;em&gt;world&lt;/em&gt; &amp;amp; friends</title>
    <link rel="alternate" href="hello.html"/>
    <updated>2022-01-02T03:04:05-05:00</updated>
    <published>2022-01-01T00:00:00Z</published>
    <summary>Short.</summary>
    <content type="html">&lt;p&gt;Full &lt;img src="img/a.png" onerror="x()"&gt;&lt;/p&gt;</content>
  </entry>
</feed>"""
    feed = parse(atom)
    assert feed.title == "My Blog"
    (entry,) = feed.entries
    assert entry.title == "Hello world & friends"
    assert entry.link == "https://blog.example/posts/hello.html"
    assert entry.html == '<p>Full <img src="https://blog.example/posts/img/a.png"></p>'
    assert entry.updated == datetime(2022, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=-5)))
    assert entry.published == datetime(2022, 1, 1, tzinfo=UTC)


def test_plain_text_content_is_escaped() -> None:
    atom = b"""<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>
      <entry><id>1</id><title>x</title><content type="text">a &lt;b&gt; c

second paragraph</content></entry></feed>"""
    (entry,) = parse(atom).entries
    assert entry.html == "<p>a &lt;b&gt; c</p><p>second paragraph</p>"


def test_titles_lose_control_characters_and_line_breaks() -> None:
    (entry,) = parse(rss(item("Line\x01 one\n   line two", guid="1"))).entries
    assert entry.title == "Line one line two"


def test_entries_without_a_title_are_named_by_their_text() -> None:
    entries = parse(
        rss(item("", guid="1", description="<p>" + "字" * 100 + "</p>"), item("", guid="2", description=""))
    ).entries
    assert len(entries) == 1  # the one with neither title nor text is dropped
    assert entries[0].title == "字" * 79 + "…"


def test_only_http_links() -> None:
    feed = parse(
        rss(item("a", guid="1", link="javascript:alert(1)"), item("b", guid="2", link="ftp://x.example/f"))
    )
    assert [entry.link for entry in feed.entries] == [None, None]


def test_identities_fall_back_from_id_to_link_to_hash() -> None:
    feed = parse(
        rss(
            item("one", guid="dup", link="https://u.example/1"),
            item("two", guid="dup", link="https://u.example/2"),  # a shared id identifies nothing
            item("three", guid="unique", link="https://u.example/3"),
            item("four", link="https://u.example/4"),
            item("five"),
        )
    )
    ids = identities(feed.entries)
    assert ids[:4] == ["https://u.example/1", "https://u.example/2", "unique", "https://u.example/4"]
    assert ids[4].startswith("sha256:")


def test_dates() -> None:
    no_date, future = parse(
        rss(item("a", guid="1", date=None), item("b", guid="2", date="Fri, 01 Jan 2100 00:00:00 GMT"))
    ).entries
    first_seen = datetime(2026, 11, 22, 12, 0, tzinfo=SHANGHAI).timestamp()
    assert no_date.published is None
    assert entry_date(no_date, first_seen, SHANGHAI) == datetime(2026, 11, 22, 12, 0, tzinfo=SHANGHAI)
    assert entry_date(future, first_seen, SHANGHAI).timestamp() == first_seen  # clamped


def test_json_feed() -> None:
    document = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "JSON &amp; friends",
        "home_page_url": "https://j.example/",
        "items": [
            {
                "id": 42,
                "url": "/posts/42",
                "title": "Answer",
                "content_html": "<p>forty-two<script>x</script></p>",
                "date_published": "2022-01-01T10:00:00+08:00",
                "authors": [{"name": "Deep Thought"}],
                "tags": ["math"],
                "attachments": [
                    {"url": "https://j.example/a.mp3", "mime_type": "audio/mpeg", "size_in_bytes": 9}
                ],
            },
            {"id": "2", "content_text": "just text <b>"},
        ],
    }
    feed = parse(json.dumps(document).encode(), {"content-type": "application/feed+json"})
    assert feed.title == "JSON & friends"
    first, second = feed.entries
    assert (first.upstream_id, first.link, first.title) == ("42", "https://j.example/posts/42", "Answer")
    assert first.html == "<p>forty-two</p>"
    assert first.author == "Deep Thought" and first.categories == ("math",)
    assert first.enclosures == (Enclosure("https://j.example/a.mp3", "audio/mpeg", 9),)
    assert second.title == "just text <b>" and second.html == "<p>just text &lt;b&gt;</p>"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "not a usable feed"),
        (b"<html><body>Not a feed</body></html>", "not a usable feed"),
        (b'{"version": "https://jsonfeed.org/version/1.1"}', "without an items list"),
        (b'{"hello": "world"}', "without a JSON Feed version"),
        (b"{not json", "invalid JSON"),
    ],
)
def test_unusable_feeds(body: bytes, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse(body)


def test_a_malformed_feed_with_usable_entries_is_kept() -> None:
    broken = rss(item("ok", guid="1")).replace(b"</channel></rss>", b"<item><title>cut off")
    feed = parse(broken)
    assert [entry.title for entry in feed.entries][:1] == ["ok"] and feed.warning


def test_gb2312_feeds_decode() -> None:
    feed = parse(corpus_file("rss-parser/encoding-gb2312.xml"))
    assert any("\u4e00" <= ch <= "\u9fff" for ch in feed.entries[0].title)
    kc = parse(corpus_file("NetNewsWire/kc0011.rss"))
    assert len(kc.entries) == 20
    # "2020/1/10 14:33:00": read from the text, not from feedparser's clock-filled guess
    assert any(e.published == datetime(2020, 1, 10, 14, 33, tzinfo=SHANGHAI) for e in kc.entries)
    assert all("onload" not in e.html for e in kc.entries)


def test_http_charset_is_used() -> None:
    body = (
        '<?xml version="1.0"?><rss version="2.0"><channel>'
        + "<item><title>中文标题</title></item></channel></rss>"
    )
    # the XML declares no encoding: only the HTTP header says GB2312
    feed = parse(body.encode("gb2312"), {"content-type": "application/rss+xml; charset=gb2312"})
    assert feed.entries[0].title == "中文标题"


def test_xml_base_and_leading_white_space() -> None:
    for name in ("Feeder/atom_xml_base_entry_level.xml", "Feeder/atom_xml_base_feed_level.xml"):
        for entry in parse(corpus_file(name)).entries:
            assert entry.link and entry.link.startswith("http")
    meituan = parse(corpus_file("Rodel.Reader/Rss/meituan.xml"))
    assert len(meituan.entries) == 10 and meituan.warning is None  # the white space is dropped, not the feed


def test_relative_urls_in_content_resolve_against_xml_base_then_the_entry_then_the_channel() -> None:
    # The feed is served from a CDN host: its own URL is the last base to try, never the first.
    cdn = "https://cdn.example/feeds/news.xml"
    feed = rss(
        item(
            "linked", guid="1", link="https://site.example/news/2026/a.html", description='<img src="a.png">'
        ),
        item("unlinked", guid="2", description='<a href="/about">about</a> <img src="b.png">'),
    )
    linked, unlinked = parse_feed(feed, {}, cdn, SHANGHAI).entries
    assert 'src="https://site.example/news/2026/a.png"' in linked.html
    assert 'href="https://upstream.example/about"' in unlinked.html  # the channel's link
    assert 'src="https://upstream.example/b.png"' in unlinked.html
    atom = b"""<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom">
    <title>t</title><id>urn:t</id><updated>2026-01-01T00:00:00Z</updated>
    <entry xml:base="https://base.example/dir/"><title>based</title><id>urn:1</id>
    <updated>2026-01-01T00:00:00Z</updated><link href="https://site.example/x.html"/>
    <content type="html">&lt;img src="x.png"&gt;</content></entry>
    <entry><title>bare</title><id>urn:2</id><updated>2026-01-01T00:00:00Z</updated>
    <content type="html">&lt;img src="y.png"&gt;</content></entry></feed>"""
    based, bare = parse_feed(atom, {}, cdn, SHANGHAI).entries
    assert 'src="https://base.example/dir/x.png"' in based.html  # xml:base over the entry's link
    assert 'src="https://cdn.example/feeds/y.png"' in bare.html  # nothing else to go by: the feed's URL
    json_feed = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "title": "j",
            "home_page_url": "https://site.example/blog/",
            "items": [{"id": "1", "title": "j", "content_html": '<img src="j.png">'}],
        }
    ).encode()
    (only,) = parse_feed(json_feed, {"content-type": "application/feed+json"}, cdn, SHANGHAI).entries
    assert 'src="https://site.example/blog/j.png"' in only.html


def test_hostile_real_world_content_is_cleaned() -> None:
    for name in ("NetNewsWire/dcrainmaker.xml", "Feeder/atom_cornucopia.xml", "NetNewsWire/natasha.xml"):
        for entry in parse(corpus_file(name)).entries:
            lowered = entry.html.lower()
            assert "<script" not in lowered and "<iframe" not in lowered and "javascript:" not in lowered
            assert not re.search(r"<[^>]*\son\w+\s*=", lowered)  # no event handler attributes


FEEDPARSER_TESTS = SHARED / "corpus" / "upstream" / "feedparser-tests"
_ACTIVE = re.compile(
    r"<(?:script|style|iframe|object|embed|form|meta|link|base|svg|math|frame|applet)\b"
    r"|<[^>]*\son\w+\s*="
    r"|(?:javascript|vbscript|data):"
    r"|<[^>]*\sstyle\s*=",
    re.IGNORECASE,
)


def feedparser_corpus(folder: str) -> list[Path]:
    path = FEEDPARSER_TESTS / folder
    if not path.is_dir():
        pytest.skip(f"{path} is absent (../shared/corpus/upstream is not beside the checkout)")
    return sorted(path.glob("*.xml"))


def test_feedparsers_hostile_corpus_is_neutralized() -> None:
    """feedparser's own sanitizer tests, against feedhub's single nh3 policy."""
    files = feedparser_corpus("wellformed/sanitize")
    assert len(files) >= 50
    for file in files:
        for entry in parse(file.read_bytes()).entries:
            assert not _ACTIVE.search(entry.html), (file.name, entry.html)
            assert entry.link is None or entry.link.startswith(("http://", "https://"))


@pytest.mark.parametrize(
    ("folder", "version"), [("wellformed/atom", "Atom 0.3"), ("wellformed/rdf", "RSS 1.0")]
)
def test_older_formats(folder: str, version: str) -> None:
    parsed = [parse(file.read_bytes()) for file in feedparser_corpus(folder)]
    assert sum(len(feed.entries) for feed in parsed) >= 4, version


def test_entries_are_cut_to_the_limits() -> None:
    long_id = "id-" + "x" * 5_000
    enclosures = "".join(
        f'<enclosure url="https://x.example/{n}.mp3" type="audio/mpeg" length="1"/>' for n in range(50)
    )
    long_link = "https://x.example/" + "a" * MAX_URL_CHARS
    feed = parse(
        rss(
            item(
                "题" * 5_000,
                guid=long_id,
                link=long_link,
                description="<p>" + "文" * MAX_CONTENT_BYTES + "</p>",
                extra=enclosures,
            )
        )
    )
    (entry,) = feed.entries
    assert len(entry.title) <= MAX_TITLE_CHARS and entry.title.endswith("…")
    assert len(entry.html.encode()) <= MAX_CONTENT_BYTES and entry.html.endswith("<p>[…]</p>")
    assert entry.html.startswith("<p>文") and entry.cut
    assert entry.upstream_id.startswith("id-sha256:") and len(entry.upstream_id) < 50
    assert entry.link is None  # too long to be a link anyone wrote
    assert len(entry.enclosures) == MAX_ENCLOSURES
    assert "1 entries cut to the size limits" in feed.warning


def test_content_nested_too_deep_is_kept_as_its_text() -> None:
    deep = "<div>" * 300_000 + "text<script>alert(1)</script>"  # html5ever would take minutes on it
    (entry,) = parse(rss(item("deep", guid="d", description=deep))).entries
    assert entry.html == "<p>text</p>"


def test_json_feeds_with_lone_surrogates_and_deep_nesting() -> None:
    document = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "t\ud800",
        "items": [{"id": "\udfff1", "title": "x\ud800y", "content_html": "<p>a\ud800b\x07</p>"}],
    }
    (entry,) = parse(json.dumps(document).encode(), {"content-type": "application/feed+json"}).entries
    assert (entry.title, entry.html, entry.upstream_id) == ("xy", "<p>ab</p>", "1")
    with pytest.raises(ParseError, match="nested too deep"):
        parse(b"[" * 100_000, {"content-type": "application/json"})
    with pytest.raises(ParseError, match="invalid JSON"):
        parse(b'{"version": ' + b"1" * 5_000 + b"}", {"content-type": "application/json"})


def test_titles_lose_what_hides_or_reorders_them() -> None:
    (entry,) = parse(rss(item("bidi \u202eevil\u202c, zero\u200bwidth\u2060, \ufeffbom", guid="1"))).entries
    assert entry.title == "bidi evil, zerowidth, bom"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            "Wed, 08 Dec 2021 10:35:30 +0800",
            datetime(2021, 12, 8, 10, 35, 30, tzinfo=timezone(timedelta(hours=8))),
        ),
        ("Wed, 08 Dec 21 10:35:30 GMT", datetime(2021, 12, 8, 10, 35, 30, tzinfo=UTC)),
        ("2021-12-08T10:35:30Z", datetime(2021, 12, 8, 10, 35, 30, tzinfo=UTC)),
        ("Mon, 01 Jan 0001 00:00:00 +0800", None),  # email.utils reads the year 0001 as 2001
        ("Fri, 31 Dec 9999 23:59:59 -1200", None),  # the year 10000 in UTC
        ("Seg, 24 Set 2018 19:42:40 -0300", None),  # feedparser would fill the gaps from the clock
        ("2021-W49", None),
        ("", None),
    ],
)
def test_feed_dates_are_read_for_sure_or_not_at_all(raw: str, expected: datetime | None) -> None:
    assert parse_feed_date(raw, SHANGHAI) == expected


def test_entry_dates_before_1970_are_the_first_seen_time() -> None:
    (entry,) = parse(rss(item("old", guid="1", date="Mon, 01 Jan 1900 00:00:00 GMT"))).entries
    assert entry.published is not None and entry.published.year == 1900
    assert entry_date(entry, 1_800_000_000.0, SHANGHAI).timestamp() == 1_800_000_000.0
