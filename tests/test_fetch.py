"""Fetching over real HTTP from a scripted server on 127.0.0.1."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from feedhub.addresses import AddressPolicy, origin
from feedhub.aggregator.fetch import Fetcher, FetchError, Validators
from tests.helpers import FrozenClock
from tests.postgres import free_port
from tests.upstream import Response, Upstream, gzipped

NOW = 1_800_000_000.0
LIMIT = 10 * 1024 * 1024


@pytest.fixture
def fetcher() -> Fetcher:
    return Fetcher("feedhub/0.1.0 (+https://news.example.org/)", FrozenClock(NOW))


NO_VALIDATORS = Validators()


def fetch(
    fetcher: Fetcher, url: str, validators: Validators = NO_VALIDATORS, timeout: float = 5, limit: int = LIMIT
):
    return fetcher.fetch(url, validators, timeout, limit, AddressPolicy(origin(url)))  # trusted as written


def test_conditional_get_round_trip(fetcher: Fetcher, upstream: Upstream) -> None:
    etag, modified = 'W/"v1-weak"', "Wed, 08 Dec 2021 02:35:30 GMT"
    upstream.script(
        "/feed",
        Response(200, b"<rss/>", {"ETag": etag, "Last-Modified": modified}),
        Response(304, b"", {}),
    )
    first = fetch(fetcher, upstream.url("/feed"))
    assert first.status == 200 and first.body == b"<rss/>"
    assert first.validators == Validators(etag, modified)  # exactly as received
    second = fetch(fetcher, upstream.url("/feed"), first.validators)
    assert second.not_modified and second.body is None
    assert second.validators == first.validators
    sent = upstream.hits("/feed")[1].headers
    assert sent["if-none-match"] == etag and sent["if-modified-since"] == modified


def test_user_agent_and_accept(fetcher: Fetcher, upstream: Upstream) -> None:
    upstream.script("/feed", Response(200, b"<rss/>"))
    fetch(fetcher, upstream.url("/feed"))
    headers = upstream.hits("/feed")[0].headers
    assert headers["user-agent"] == "feedhub/0.1.0 (+https://news.example.org/)"
    assert "application/atom+xml" in headers["accept"] and "gzip" in headers["accept-encoding"]


def test_permanent_redirects_are_reported(fetcher: Fetcher, upstream: Upstream) -> None:
    upstream.script("/old", Response(301, headers={"Location": "/newer"}))
    upstream.script("/newer", Response(308, headers={"Location": upstream.url("/newest")}))
    upstream.script("/newest", Response(200, b"<rss/>"))
    fetched = fetch(fetcher, upstream.url("/old"))
    assert fetched.body == b"<rss/>"
    assert fetched.url == fetched.permanent_url == upstream.url("/newest")


@pytest.mark.parametrize("status", [302, 303, 307])
def test_temporary_redirects_change_nothing(fetcher: Fetcher, upstream: Upstream, status: int) -> None:
    upstream.script("/feed", Response(status, headers={"Location": "/elsewhere"}))
    upstream.script("/elsewhere", Response(200, b"<rss/>"))
    fetched = fetch(fetcher, upstream.url("/feed"))
    assert fetched.body == b"<rss/>" and fetched.permanent_url is None


def test_a_temporary_hop_ends_the_permanent_move(fetcher: Fetcher, upstream: Upstream) -> None:
    upstream.script("/a", Response(301, headers={"Location": "/b"}))
    upstream.script("/b", Response(302, headers={"Location": "/c"}))
    upstream.script("/c", Response(301, headers={"Location": "/d"}))
    upstream.script("/d", Response(200, b"<rss/>"))
    assert fetch(fetcher, upstream.url("/a")).permanent_url == upstream.url("/b")


def test_redirect_limits(fetcher: Fetcher, upstream: Upstream) -> None:
    for hop in range(7):
        upstream.script(f"/r{hop}", Response(301, headers={"Location": f"/r{hop + 1}"}))
    with pytest.raises(FetchError, match="more than 5 redirects"):
        fetch(fetcher, upstream.url("/r0"))
    upstream.script("/js", Response(302, headers={"Location": "javascript:alert(1)"}))
    with pytest.raises(FetchError, match="non-HTTP URL"):
        fetch(fetcher, upstream.url("/js"))


def test_gone(fetcher: Fetcher, upstream: Upstream) -> None:
    upstream.script("/feed", Response(410))
    with pytest.raises(FetchError) as caught:
        fetch(fetcher, upstream.url("/feed"))
    assert caught.value.gone and caught.value.status == 410


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"),
    [
        (429, "120", NOW + 120),
        (503, "Sat, 16 Jan 2027 08:00:00 GMT", 1_800_086_400.0),
        (503, None, None),
        (429, "soon", None),
        (503, "999999999", NOW + 7 * 86400),  # capped at a week
    ],
)
def test_retry_after(fetcher: Fetcher, upstream: Upstream, status: int, retry_after, expected) -> None:
    headers = {"Retry-After": retry_after} if retry_after else {}
    upstream.script("/feed", Response(status, b"busy", headers))
    with pytest.raises(FetchError) as caught:
        fetch(fetcher, upstream.url("/feed"))
    assert caught.value.status == status and not caught.value.gone
    assert caught.value.retry_at == expected


def test_other_failures(fetcher: Fetcher, upstream: Upstream) -> None:
    upstream.script("/feed", Response(500, b"oops"))
    with pytest.raises(FetchError, match="500 Internal Server Error"):
        fetch(fetcher, upstream.url("/feed"))
    with pytest.raises(FetchError, match="cannot connect"):
        fetch(fetcher, f"http://127.0.0.1:{free_port()}/feed")


def test_size_cap_while_streaming(fetcher: Fetcher, upstream: Upstream) -> None:
    upstream.script("/big", Response(200, b"x" * 5000))
    with pytest.raises(FetchError, match="4,096-byte limit"):
        fetch(fetcher, upstream.url("/big"), limit=4096)
    # no Content-Length to go by: the cap is enforced on the bytes as they arrive
    upstream.script("/chunked", Response(200, b"y" * 5000, {"Content-Length": "", "Connection": "close"}))
    with pytest.raises(FetchError, match="limit"):
        fetch(fetcher, upstream.url("/chunked"), limit=4096)
    assert fetch(fetcher, upstream.url("/big"), limit=5000).body == b"x" * 5000


def test_size_cap_applies_after_decompression(fetcher: Fetcher, upstream: Upstream) -> None:
    bomb = gzipped(b"\0" * (20 * 1024 * 1024))  # 20 MiB of zeros in about 20 KiB
    assert len(bomb) < 64 * 1024
    upstream.script("/bomb", Response(200, bomb, {"Content-Encoding": "gzip"}))
    with pytest.raises(FetchError, match="after decompression"):
        fetch(fetcher, upstream.url("/bomb"))
    upstream.script("/small", Response(200, gzipped(b"<rss/>"), {"Content-Encoding": "gzip"}))
    assert fetch(fetcher, upstream.url("/small")).body == b"<rss/>"


def test_timeouts(fetcher: Fetcher, upstream: Upstream) -> None:
    upstream.script("/slow", Response(200, b"<rss/>", delay=3))
    with pytest.raises(FetchError, match="no answer within 1 s"):
        fetch(fetcher, upstream.url("/slow"), timeout=1)
    # a byte every 0.2 s never trips the read timeout, but the whole download has a limit
    upstream.script("/drip", Response(200, b"z" * 100, drip=0.2))
    with pytest.raises(FetchError, match="too slowly"):
        fetch(fetcher, upstream.url("/drip"), timeout=1)


def test_files(fetcher: Fetcher, tmp_path: Path) -> None:
    feed = tmp_path / "feed.xml"
    feed.write_bytes(b"<rss/>")
    first = fetch(fetcher, feed.as_uri())
    assert first.body == b"<rss/>" and re.fullmatch(r'"[0-9a-f]+-[0-9a-f]+"', first.validators.etag)
    assert fetch(fetcher, feed.as_uri(), first.validators).not_modified
    feed.write_bytes(b"<rss>changed</rss>")
    os.utime(feed, ns=(1, 2))
    assert fetch(fetcher, feed.as_uri(), first.validators).body == b"<rss>changed</rss>"
    with pytest.raises(FetchError, match="cannot read"):
        fetch(fetcher, (tmp_path / "missing.xml").as_uri())
    with pytest.raises(FetchError, match="limit"):
        fetch(fetcher, feed.as_uri(), limit=4)


def test_a_guarded_request_never_connects_to_an_internal_address(
    fetcher: Fetcher, upstream: Upstream
) -> None:
    upstream.feed("/feed", b"<rss/>")
    url = upstream.url("/feed")
    not_trusted = AddressPolicy(origin("https://elsewhere.example/"))
    with pytest.raises(FetchError, match=r"refused: 127\.0\.0\.1 is a loopback address \(allow_private"):
        fetcher.fetch(url, NO_VALIDATORS, 5, LIMIT, not_trusted)
    with pytest.raises(FetchError, match=r"refused: localhost is (127\.0\.0\.1|::1), a loopback address"):
        fetcher.fetch(url.replace("127.0.0.1", "localhost"), NO_VALIDATORS, 5, LIMIT, not_trusted)
    assert upstream.hits("/feed") == []
    allowed = AddressPolicy(origin("https://elsewhere.example/"), allow_private=True)
    assert fetcher.fetch(url, NO_VALIDATORS, 5, LIMIT, allowed).status == 200


def test_redirect_targets_obey_the_policy_but_the_operators_origin_is_trusted(
    fetcher: Fetcher, upstream: Upstream
) -> None:
    other = Upstream()
    try:
        other.feed("/feed", b"<rss/>")
        upstream.script("/away", Response(302, headers={"Location": other.url("/feed")}))
        with pytest.raises(FetchError, match=rf"redirected to {re.escape(other.url('/feed'))}: refused"):
            fetch(fetcher, upstream.url("/away"))
        assert other.hits("/feed") == []
        upstream.script("/home", Response(302, headers={"Location": "/feed-here"}))
        upstream.feed("/feed-here", b"<rss/>")
        assert fetch(fetcher, upstream.url("/home")).url == upstream.url("/feed-here")
    finally:
        other.stop()
