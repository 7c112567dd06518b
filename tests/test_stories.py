"""One post per story: the same story reaching one category from two sources is merged once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from feedhub.aggregator.state import PollResult
from feedhub.aggregator.stories import canonical_link
from tests.helpers import BOTH_BACKENDS, FrozenClock, SiteFolder
from tests.test_poller import NOW, Aggregation
from tests.upstream import Response, Upstream, item, rss


@pytest.fixture
def agg(site: SiteFolder, upstream: Upstream) -> Iterator[Aggregation]:
    yield Aggregation(site, upstream, FrozenClock(NOW))


def test_a_canonical_link_drops_what_does_not_name_the_article() -> None:
    same = "https://news.example/a/1.html?id=7"
    for spelling in (
        "HTTPS://News.Example:443/a/1.html?id=7",
        "https://news.example/a/1.html?utm_source=rss&id=7&utm_medium=feed#comments",
        "https://news.example/a/1.html?id=7&fbclid=abc&gclid=x&spm=1.2",
    ):
        assert canonical_link(spelling) == same, spelling
    assert canonical_link("https://news.example/a/1.html?id=8") != same
    assert canonical_link("http://news.example:8080") == "http://news.example:8080/"


@BOTH_BACKENDS
def test_a_story_another_source_already_told_is_not_merged_again(agg: Aggregation) -> None:
    agg.upstream.feed(
        "/wire",
        rss(item("央行：保持流动性合理充裕", guid="w1", link="https://up.example/s/1?utm_source=wire")),
    )
    agg.upstream.feed(
        "/portal",
        rss(
            item("央行：保持流动性合理充裕（转载）", guid="p1", link="https://UP.example/s/1#top"),
            item(
                "Same words, other link",
                guid="p2",
                link="https://mirror.example/x",
                description="<p>Body.</p>",
            ),
            item("Its own story", guid="p3", link="https://up.example/s/3"),
        ),
    )
    agg.upstream.feed(
        "/other",
        rss(
            item(
                "Same words, other link", guid="o1", link="https://up.example/s/2", description="<p>Body.</p>"
            )
        ),
    )
    agg.configure(
        {"id": "wire", "url": agg.upstream.url("/wire")},
        {"id": "other", "url": agg.upstream.url("/other")},
        {"id": "portal", "url": agg.upstream.url("/portal")},
        {"id": "elsewhere", "url": agg.upstream.url("/wire") + "?copy", "category": "world"},
    )
    assert agg.poll("wire").counts.new == 1
    assert agg.poll("other").counts.new == 1
    report = agg.poll("portal")
    assert report.result is PollResult.NEW and report.counts.new == 1  # only its own story
    assert len(report.counts.duplicates) == 2
    assert report.reason is not None and report.reason.startswith("2 duplicates of other sources' posts")
    assert "(wire)" in report.reason and report.state.reason == report.reason  # on /status
    assert sorted(agg.titles()) == sorted(
        ["央行：保持流动性合理充裕", "Same words, other link", "Its own story"]
    )
    # Another category is another page: the story is told there too.
    assert agg.poll("elsewhere").counts.new == 1
    # A duplicate stays one on later polls (it was seen), and after a restart.
    agg.restart()
    agg.clock.now += 3600
    again = agg.poll("portal")
    assert again.result is PollResult.NOT_MODIFIED and len(agg.posts()) == 4


@BOTH_BACKENDS
def test_two_sources_that_reach_one_feed_after_redirects_are_warned(agg: Aggregation) -> None:
    agg.upstream.feed("/feed.xml", rss(item("One", guid="1", link="https://up.example/1")))
    agg.upstream.script("/old", Response(302, b"", {"Location": "/feed.xml"}))
    agg.configure(
        {"id": "direct", "url": agg.upstream.url("/feed.xml")},
        {"id": "moved", "url": agg.upstream.url("/old"), "category": "other"},
    )
    assert agg.poll("direct").reason is None
    report = agg.poll("moved")
    assert (
        report.reason
        == f"polls the same feed as source direct after redirects ({agg.upstream.url('/feed.xml')})"
    )
