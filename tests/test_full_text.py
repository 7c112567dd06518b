"""Full text of truncated items: each new entry's article fetched from 127.0.0.1, extracted, cached."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator

import pytest

from feedhub.aggregator.state import PollResult
from feedhub.errors import ConfigError
from tests.helpers import BOTH_BACKENDS, FrozenClock, SiteFolder
from tests.test_poller import NOW, Aggregation
from tests.upstream import Response, Seen, Upstream, item, rss

pytestmark = BOTH_BACKENDS

ARTICLE = """<!DOCTYPE html><html><head><title>{title} | The Daily Example</title></head><body>
<header><nav><a href="/">Home</a> <a href="/world">World</a> <a href="/business">Business</a></nav></header>
<main><article><h1>{title}</h1>
<p class="byline">By A. Reporter, 8 December 2021</p>
<p>The central bank said on Wednesday that it would keep liquidity reasonably ample, and that
interest rates in the money market would stay broadly stable through the end of the year.</p>
<p>Officials told a briefing in the capital that the measures were meant to support lending to
small firms, which have struggled with higher costs since the summer.</p>
<figure><img src="img/chart.png" alt="A chart of rates"></figure>
<p>Analysts said the move had been widely expected. <a href="/analysis/rates">Read our analysis</a>.</p>
</article></main>
<aside><h2>Most read</h2><ul><li><a href="/a">Something else entirely</a></li></ul></aside>
<footer>Copyright The Daily Example. All rights reserved. Cookie settings.</footer></body></html>"""


@pytest.fixture
def agg(site: SiteFolder, upstream: Upstream) -> Iterator[Aggregation]:
    yield Aggregation(site, upstream, FrozenClock(NOW))


def article(path: str, title: str = "Rates stay stable") -> bytes:
    return ARTICLE.format(title=title).encode()


def configure(agg: Aggregation, *items: str, **source: object) -> None:
    agg.upstream.feed("/feed", rss(*items))
    agg.configure(
        {"id": "up", "url": agg.upstream.url("/feed"), "full_text": True, "full_text_delay": 0, **source}
    )


def teaser(number: int, link: str) -> str:
    return item(f"Rates stay stable {number}", guid=f"g{number}", link=link, description="<p>Rates…</p>")


def test_a_teaser_becomes_the_whole_article_with_absolute_urls(agg: Aggregation) -> None:
    agg.upstream.feed("/news/2021/rates.html", article("/news/2021/rates.html"), "text/html; charset=utf-8")
    configure(agg, teaser(1, agg.upstream.url("/news/2021/rates.html")))
    report = agg.poll()
    assert report.result is PollResult.NEW and report.reason is None
    (post,) = agg.posts().values()
    assert "keep liquidity reasonably ample" in post.body and "small firms" in post.body
    assert "Most read" not in post.body and "Cookie settings" not in post.body  # the page's furniture
    assert f'src="{agg.upstream.url("/news/2021/img/chart.png")}"' in post.body  # against the article
    assert f'href="{agg.upstream.url("/analysis/rates")}"' in post.body
    assert "Rates…" not in post.body


def test_an_unchanged_article_is_never_downloaded_twice(agg: Aggregation) -> None:
    link = agg.upstream.url("/story")
    agg.upstream.feed("/story", article("/story"), "text/html")
    configure(agg, teaser(1, link))
    agg.poll()
    # The feed's teaser changes: the post is rewritten, and the article asked for with its validators.
    agg.upstream.feed(
        "/feed", rss(item("Rates stay stable 1", guid="g1", link=link, description="<p>New</p>"))
    )
    agg.clock.now += 3600
    assert agg.poll().result is PollResult.UPDATED
    first, second = agg.upstream.hits("/story")
    assert "if-none-match" not in first.headers and second.headers["if-none-match"]
    (post,) = agg.posts().values()
    assert "keep liquidity reasonably ample" in post.body  # from the cache, after the 304
    agg.restart()  # a new process: the cache is in the database
    agg.clock.now += 3600
    assert agg.poll().result is PollResult.NOT_MODIFIED
    assert len(agg.upstream.hits("/story")) == 2  # an unchanged entry asks for nothing


def test_whatever_fails_the_feed_content_stays_and_status_says_why(agg: Aggregation) -> None:
    agg.upstream.script("/gone", Response(404, b"no"))
    agg.upstream.feed("/pdf", b"%PDF-1.4", "application/pdf")
    agg.upstream.feed(
        "/empty", b"<html><head><title>t</title></head><body><script>x()</script></body></html>", "text/html"
    )
    configure(
        agg,
        teaser(1, agg.upstream.url("/gone")),
        teaser(2, agg.upstream.url("/pdf")),
        teaser(3, agg.upstream.url("/empty")),
    )
    report = agg.poll()
    assert report.result is PollResult.NEW and report.counts.new == 3
    assert all("Rates…" in post.body for post in agg.posts().values())
    assert report.reason is not None and report.reason.startswith("full text: 3 of 3 articles failed")
    assert report.state.reason == report.reason  # what /status shows
    reasons = report.counts.full_text.failures
    assert any("/gone: 404" in reason for reason in reasons)
    assert any("not an HTML page ('application/pdf')" in reason for reason in reasons)
    assert any("/empty: no article text found in the page" in reason for reason in reasons)


def test_a_shorter_article_keeps_the_feed_content(agg: Aggregation) -> None:
    long_teaser = "<p>" + "The feed itself carries the whole story, word for word. " * 40 + "</p>"
    agg.upstream.feed("/short", article("/short"), "text/html")
    configure(agg, item("Whole", guid="g1", link=agg.upstream.url("/short"), description=long_teaser))
    agg.poll()
    (post,) = agg.posts().values()
    assert "word for word" in post.body and "small firms" not in post.body


def test_article_links_obey_the_address_policy(agg: Aggregation) -> None:
    # The feed is the operator's own URL (127.0.0.1); an article on another loopback origin is not.
    elsewhere = agg.upstream.url("/story").replace("127.0.0.1", "localhost")
    agg.upstream.feed("/story", article("/story"), "text/html")
    configure(agg, teaser(1, elsewhere))
    report = agg.poll()
    assert report.reason is not None and "loopback" in report.reason
    assert not agg.upstream.hits("/story")
    configure(agg, teaser(2, elsewhere), allow_private_addresses=True)
    agg.poll()
    assert any("small firms" in post.body for post in agg.posts().values())


def test_at_most_two_requests_at_a_time_to_one_host_and_the_delay_between(agg: Aggregation) -> None:
    in_flight, most, starts = 0, 0, []
    lock = threading.Lock()

    def slow(_request: Seen) -> Response:
        nonlocal in_flight, most
        with lock:
            in_flight += 1
            most = max(most, in_flight)
            starts.append(time.monotonic())
        time.sleep(0.3)
        with lock:
            in_flight -= 1
        return Response(200, article("/a"), {"Content-Type": "text/html"})

    for number in range(6):
        agg.upstream.routes[f"/a{number}"] = slow
    configure(agg, *(teaser(number, agg.upstream.url(f"/a{number}")) for number in range(6)), backfill=6)
    assert agg.poll().counts.new == 6
    assert most == 2
    configure(agg, *(teaser(number, agg.upstream.url(f"/a{number}")) for number in range(6, 9)))
    for number in range(6, 9):
        agg.upstream.routes[f"/a{number}"] = slow
    starts.clear()
    agg.sources["up"] = type(agg.sources["up"])(**{**vars(agg.sources["up"]), "full_text_delay": 0.5})
    agg.poll()
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert len(starts) == 3 and all(gap >= 0.45 for gap in gaps), gaps


@pytest.mark.parametrize("delay", ["fast", -1, 61, True])
def test_a_bad_full_text_delay_names_the_file_the_source_and_the_key(agg: Aggregation, delay: object) -> None:
    with pytest.raises(ConfigError, match=r"sources.yaml: source 'up': full_text_delay: must be a number"):
        configure(agg, teaser(1, agg.upstream.url("/a")), full_text_delay=delay)
