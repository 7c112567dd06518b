"""Generated hostile feeds and posts through parse, sanitize, write, read back, index and publish.

Not collected by the suite itself: tests/test_fuzz.py runs this module in a process of
its own, under a memory cap, so that an input that blows up memory fails the test
instead of the machine. Every example must end with every entry written as a post that
reads back, every post file either indexed or skipped with a reason, every published
document parseable and no HTML field carrying live markup.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import timedelta
from pathlib import Path
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from feedhub.aggregator.entries import ParseError, parse_feed
from feedhub.aggregator.merge import FirstPoll, Merger
from feedhub.aggregator.sources import DEFAULT_MAX_BYTES, load_sources
from feedhub.aggregator.state import StateStore
from feedhub.config import load_config
from feedhub.pages import Pages
from feedhub.posts import read_post_file
from feedhub.storage import open_storage
from tests.e2e.test_hostile import assert_inert
from tests.helpers import SiteFolder, open_index

SHANGHAI = ZoneInfo("Asia/Shanghai")
SETTINGS = settings(
    max_examples=int(os.environ.get("FEEDHUB_FUZZ_EXAMPLES", "200")),
    deadline=timedelta(seconds=60),  # a bound on hanging, not a speed target
    suppress_health_check=list(HealthCheck),
    database=None,
    derandomize=True,  # the same examples on every run: CI failures reproduce
)

TEXT = st.text(
    st.one_of(
        st.characters(codec=None),
        st.sampled_from(list("\x00\x07\x0b\x1b\x7f\x80\x85\x9f\u2028\u202e\u200b\ufeff\ufffe<>&\"';[]{}*!%")),
    ),
    max_size=40,
)
REFERENCE = st.sampled_from(
    [
        "&#x110000;",
        "&#99999999999999999999;",
        "&#xD800;",
        "&#0;",
        "&#8217;",
        "&amp;",
        "&lt;script&gt;",
        "&a;",
        "&b;",
    ]
)
MARKUP = st.sampled_from(
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        '<a href="javascript:alert(1)">x</a>',
        "<svg onload=alert(1)>",
        "<style>*{}</style>",
        "<iframe src=//evil>",
        '<a href="//relative">r</a>',
        "<p>",
        "</div>",
        "<![CDATA[",
        "]]>",
        "<!--",
        "<div>" * 1_500,
        "<b>" * 3_000,
    ]
)
DATES = st.sampled_from(
    [
        "Wed, 08 Dec 2021 10:35:30 +0800",
        "Mon, 01 Jan 0001 00:00:00 +0800",
        "Fri, 31 Dec 9999 23:59:59 -1200",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59-05:00",
        "1850-06-01T12:00:00+08:05",
        "2021-02-30T00:00:00Z",
        "Seg, 24 Set 2018 19:42:40 -0300",
        "",
        "soon",
    ]
)
PIECE = st.one_of(TEXT, REFERENCE, MARKUP)
MAX_REPEATED_CHARS = 256 * 1024


@st.composite
def entity_declarations(draw: st.DrawFn) -> str:
    values = st.one_of(
        st.just("A" * 20_000), st.just("&#160;"), st.just("&a;&a;&a;"), st.text("xyz", max_size=9)
    )
    kinds = st.sampled_from(
        [
            '<!ENTITY {name} "{value}">',
            '<!ENTITY % {name} "{value}">',
            '<!ENTITY {name} SYSTEM "file:///etc/passwd">',
        ]
    )
    declarations = draw(st.lists(st.tuples(st.sampled_from("ab"), values, kinds), max_size=3))
    return "\n".join(kind.format(name=name, value=value) for name, value, kind in declarations)


@st.composite
def hostile_rss(draw: st.DrawFn) -> bytes:
    items = []
    for _ in range(draw(st.integers(1, 6))):
        title = "".join(draw(st.lists(PIECE, max_size=4)))
        piece = "".join(draw(st.lists(PIECE, max_size=6)))
        # Repeated up to 3,000 times, to a quarter MiB an item at most: a 1 GB document (which the
        # fetcher refuses unread anyway) only ran the generator out of memory.
        repeat = draw(st.sampled_from([1, 1, 1, 3_000]))
        body = piece * min(repeat, max(1, MAX_REPEATED_CHARS // max(1, len(piece))))
        guid = draw(st.one_of(st.none(), st.just("same"), TEXT, st.just("g" * 5_000)))
        link = draw(
            st.one_of(
                st.none(), st.just("javascript:alert(1)"), st.just("/relative"), st.just("http:no-host")
            )
        )
        parts = [f"<title>{title}</title>", f"<description><![CDATA[{body}]]></description>"]
        parts += [f"<guid>{guid}</guid>"] if guid is not None else []
        parts += [f"<link>{link}</link>"] if link is not None else []
        parts.append(f"<pubDate>{draw(DATES)}</pubDate>")
        items.append(f"<item>{''.join(parts)}</item>")
    references = "".join(draw(st.lists(REFERENCE, max_size=3))) * draw(st.sampled_from([1, 10_000]))
    doctype = f"<!DOCTYPE rss [\n{draw(entity_declarations())}\n]>\n" if draw(st.booleans()) else ""
    document = (
        f'<?xml version="1.0" encoding="utf-8"?>\n{doctype}<rss version="2.0"><channel>'
        f"<title>{draw(TEXT)}{references}</title><link>https://up.example/</link><description>d</description>"
        f"{''.join(items)}</channel></rss>"
    )
    encoded = document.encode("utf-8", errors="surrogatepass")
    return encoded.decode("utf-8", errors="replace").encode(draw(st.sampled_from(["utf-8", "utf-16"])))


@st.composite
def hostile_json_feed(draw: st.DrawFn) -> bytes:
    items = [
        {
            "id": draw(st.one_of(TEXT, st.integers(), st.none())),
            "title": draw(st.one_of(TEXT, st.none(), st.lists(TEXT, max_size=2))),
            "content_html": "".join(draw(st.lists(PIECE, max_size=5))),
            "url": draw(st.one_of(TEXT, st.just("javascript:x"), st.none())),
            "date_published": draw(st.one_of(DATES, st.integers())),
            "authors": draw(st.one_of(st.none(), st.just([{"name": "x" * 10_000}]), st.just("nobody"))),
            "attachments": draw(st.one_of(st.none(), st.just([{"url": "http:no-host.mp3"}] * 100))),
        }
        for _ in range(draw(st.integers(1, 4)))
    ]
    document = {"version": "https://jsonfeed.org/version/1.1", "title": draw(TEXT), "items": items}
    return json.dumps(document).encode()


FRONT_MATTER_PIECES = st.sampled_from(
    [
        'title: "{text}"',
        "title: {text}",
        "date: 2022-01-01 10:00:00 +0800",
        "date: 0001-01-01 00:00:00 +0800",
        "date: 9999-12-31 23:00:00 -0500",
        "date: 2022-02-30",
        "date: [1, 2]",
        "date: 1" + "0" * 5_000,
        "categories: {text}",
        "categories: [a, {text}]",
        "tags: &t [x, y]",
        "author: *t",
        "enclosures: [{{url: 'http:no-host.mp3'}}, {{url: https://x.example/a.mp3, length: -1}}]",
        "permalink: {text}",
        "a: &a [l, l, l, l, l, l, l, l, l]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
        "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
        "e: [*d,*d,*d,*d,*d,*d,*d,*d,*d]",
        "x: " + "[" * 60_000 + "]" * 60_000,
        "k: &r [*r]",
        "published: false",
        "{text}",
    ]
)


@st.composite
def hostile_post(draw: st.DrawFn) -> bytes:
    lines = [piece.format(text=draw(TEXT)) for piece in draw(st.lists(FRONT_MATTER_PIECES, max_size=6))]
    body = "".join(draw(st.lists(PIECE, max_size=6)))
    text = "\n".join(["---", *lines, "---", body])
    data = text.encode("utf-8", errors="surrogatepass")
    return data + draw(st.sampled_from([b"", b"\xff\xfe", b"\xc3"]))


def _site(root: Path) -> SiteFolder:
    site = SiteFolder(root / "site")
    site.posts.mkdir(parents=True)
    site.write_sources({"id": "up", "url": "https://up.example/feed", "backfill": 100, "max_entries": 100})
    site.write_config(timezone="Asia/Shanghai", language="zh-CN")
    return site


def _publish_and_check(site: SiteFolder) -> None:
    """Index the folder, then every post file is a post or a skip with a reason; every feed parses."""
    config = load_config(site.config_path)
    index = open_index(config)
    index.sync_all()
    skipped, _ = index.problems()
    assert all(problem.reason for problem in skipped)
    assert all(len(problem.reason) < 2_000 for problem in skipped), [p.reason[:200] for p in skipped]
    pages = Pages(index.site)
    for slug in [None, *(category.slug for category in pages.site.categories())]:
        for fmt in ("atom", "rss", "json"):
            document = pages.feed(slug, fmt, 1)
            assert document is not None
            if fmt == "json":
                for entry in json.loads(document.body)["items"]:
                    assert_inert(entry["content_html"])
                continue
            root = ElementTree.fromstring(document.body)
            for element in root.iter():
                if element.tag.endswith("content") or (fmt == "rss" and element.tag == "description"):
                    assert_inert(element.text or "")
    pages.home()
    for post in index.published_posts():
        assert pages.post(post.permalink) is not None


@SETTINGS
@given(document=st.one_of(hostile_rss(), hostile_json_feed()))
def test_hostile_feeds(document: bytes) -> None:
    # What the fetcher lets through by default: a larger body is refused before any parsing.
    assume(len(document) <= DEFAULT_MAX_BYTES)
    with tempfile.TemporaryDirectory() as folder:
        site = _site(Path(folder))
        config = load_config(site.config_path)
        (source,) = load_sources(config)
        try:
            feed = parse_feed(document, {}, source.url, SHANGHAI)
        except ParseError:
            return  # refused as a whole, with a reason: the source's error
        index = open_index(config)
        merger = Merger(config, index.writer, StateStore(open_storage(config).state), lambda: 1_800_000_000.0)
        counts = merger.merge(source, feed, FirstPoll(None))
        written = sorted(site.posts.glob("*.md"))
        assert counts.new == len(written)  # every entry merged is a post file
        for path in written:
            file = read_post_file(site.posts, path.name, SHANGHAI)
            assert file is not None and file.post is not None, (path.name, file and file.problem)
        _publish_and_check(site)


@SETTINGS
@given(posts=st.lists(hostile_post(), min_size=1, max_size=4))
def test_hostile_posts(posts: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        site = _site(Path(folder))
        for number, data in enumerate(posts):
            (site.posts / f"2022-01-0{number + 1}-post{number}.md").write_bytes(data)
        _publish_and_check(site)
