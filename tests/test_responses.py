from __future__ import annotations

from datetime import UTC, datetime

import pytest

from feedhub.cache import Representation
from feedhub.pages import HTML
from feedhub.responses import accepts_gzip, not_modified, respond

UPDATED = datetime(2021, 12, 8, 7, 46, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("", False),
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("deflate, gzip;q=0.5", True),
        ("gzip;q=0", False),
        ("gzip; q=0.0", False),
        ("*", True),
        ("identity", False),
        ("x-gzip-ish", False),
        ("gzip;q=bogus", False),
        ("*;q=0, gzip", True),  # the named coding wins over the wildcard
        ("gzip;Q=0", False),  # parameter names are case-insensitive
        ("GZIP", True),
        ("identity, *;q=0", False),
    ],
)
def test_accepts_gzip(header: str, expected: bool) -> None:
    assert accepts_gzip(header) is expected


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, False),
        ({"HTTP_IF_NONE_MATCH": '"abc"'}, True),
        ({"HTTP_IF_NONE_MATCH": 'W/"abc"'}, True),  # weak comparison
        ({"HTTP_IF_NONE_MATCH": '"x", "abc"'}, True),
        ({"HTTP_IF_NONE_MATCH": "*"}, True),
        ({"HTTP_IF_NONE_MATCH": '"x"'}, False),
        ({"HTTP_IF_MODIFIED_SINCE": "Wed, 08 Dec 2021 07:46:00 GMT"}, True),
        ({"HTTP_IF_MODIFIED_SINCE": "Wed, 08 Dec 2021 08:00:00 GMT"}, True),
        ({"HTTP_IF_MODIFIED_SINCE": "Wed, 08 Dec 2021 07:45:59 GMT"}, False),
        ({"HTTP_IF_MODIFIED_SINCE": "not a date"}, False),
        # If-None-Match decides when present, even against a current If-Modified-Since
        ({"HTTP_IF_NONE_MATCH": '"x"', "HTTP_IF_MODIFIED_SINCE": "Wed, 08 Dec 2021 08:00:00 GMT"}, False),
    ],
)
def test_not_modified(environ: dict, expected: bool) -> None:
    assert not_modified(environ, '"abc"', UPDATED) is expected


def test_respond() -> None:
    page = Representation(b"<p>hi</p>" * 100, HTML, UPDATED, policy="default-src 'none'")
    status, headers, body = respond(page, {"REQUEST_METHOD": "GET"}, 60)
    named = dict(headers)
    assert status == "200 OK" and body == page.body
    assert named["Content-Length"] == str(len(page.body)) and named["Content-Type"] == HTML
    assert named["Last-Modified"] == "Wed, 08 Dec 2021 07:46:00 GMT"
    assert named["Cache-Control"] == "public, max-age=60"
    assert named["Content-Security-Policy"] == "default-src 'none'"

    status, headers, body = respond(page, {"REQUEST_METHOD": "HEAD", "HTTP_ACCEPT_ENCODING": "gzip"}, 60)
    named = dict(headers)
    assert body == b"" and named["Content-Encoding"] == "gzip" and named["ETag"] == page.gzip_etag
    assert named["Content-Length"] == str(len(page.gzipped()))

    status, headers, body = respond(page, {"REQUEST_METHOD": "GET", "HTTP_IF_NONE_MATCH": page.etag}, 60)
    assert status == "304 Not Modified" and body == b""
    assert "Content-Length" not in dict(headers)  # nothing after the headers, and no length to wait for


def test_an_index_behind_the_folder_is_answered_no_cache() -> None:
    page = Representation(b"<p>x</p>", HTML, None)
    _, headers, _ = respond(page, {"REQUEST_METHOD": "GET"}, None)
    assert dict(headers)["Cache-Control"] == "no-cache"
