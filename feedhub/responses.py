"""HTTP answers for built documents: conditional GET, gzip, HEAD, caching headers.

``respond`` decides the answer for a request; the Flask routes and ``FastPath`` both
use it, so a response is the same whichever of them sends it. ``FastPath`` is WSGI
middleware that answers a repeated request for a document already built straight
from the cache, without routing it through Flask: feed readers poll the same URLs
over and over, and that path must cost little more than sending the bytes.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from datetime import datetime
from typing import Any

from werkzeug.http import parse_accept_header, parse_date, parse_etags

from feedhub.cache import Representation, ResponseCache
from feedhub.metrics import RequestMeter
from feedhub.urls import page_number

_REMEMBERED_URLS = 50_000
ROUTE_KEY = "feedhub.route"  # the environ key where the Flask app names the route it answered
UNROUTED = "unrouted"  # what no route matched (404s, 405s)

Headers = list[tuple[str, str]]
Environ = dict[str, Any]
WsgiApp = Callable[[Environ, Callable[..., Any]], Iterable[bytes]]


def respond(
    representation: Representation, environ: Environ, max_age: int | None
) -> tuple[str, Headers, bytes]:
    """(status line, headers, body) for a GET or HEAD of this representation; ``max_age``
    None: the answer may be stale (the index is catching up), caches must ask again."""
    gzipped = accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING", ""))
    etag = representation.gzip_etag if gzipped else representation.etag
    content_type = representation.content_type
    if representation.browser_type and _asks_for_a_page(environ.get("HTTP_ACCEPT", "")):
        content_type = representation.browser_type
    headers = [
        ("ETag", etag),
        ("Cache-Control", "no-cache" if max_age is None else f"public, max-age={max_age}"),
        ("Vary", "Accept-Encoding, Accept" if representation.browser_type else "Accept-Encoding"),
        ("X-Content-Type-Options", "nosniff"),
    ]
    if representation.policy:
        headers.append(("Content-Security-Policy", representation.policy))
    if representation.http_date is not None:
        headers.append(("Last-Modified", representation.http_date))
    if representation.links is not None:
        headers.append(("Link", representation.links))
    if not_modified(environ, etag, representation.last_modified):
        return "304 Not Modified", headers, b""
    body = representation.gzipped() if gzipped else representation.body
    headers.append(("Content-Type", content_type))
    headers.append(("Content-Length", str(len(body))))
    if gzipped:
        headers.append(("Content-Encoding", "gzip"))
    return "200 OK", headers, b"" if environ.get("REQUEST_METHOD") == "HEAD" else body


@functools.lru_cache(maxsize=256)
def _asks_for_a_page(accept: str) -> bool:
    """Whether a request comes from a browser opening a page (its Accept names text/html; feed
    readers name feed types, or */*)."""
    return "text/html" in accept.lower()


def accepts_gzip(header: str) -> bool:
    """Whether Accept-Encoding lets the answer be gzipped (RFC 9110 12.5.3, werkzeug's parser).

    Cached: clients send a handful of distinct headers, and the fast path asks on every request.
    """
    return parse_accept_header(header).quality("gzip") > 0


def not_modified(environ: Environ, etag: str, last_modified: datetime | None) -> bool:
    """RFC 9110: If-None-Match (weak comparison) decides when present, else If-Modified-Since."""
    if_none_match = environ.get("HTTP_IF_NONE_MATCH")
    if if_none_match is not None:
        if if_none_match == etag:  # what readers send: the tag they were given
            return True
        return parse_etags(if_none_match).contains_weak(etag.strip('"'))
    since = environ.get("HTTP_IF_MODIFIED_SINCE")
    if since and last_modified is not None:
        when = parse_date(since)
        return when is not None and last_modified.replace(microsecond=0) <= when
    return False


class FastPath:
    """WSGI middleware: a GET or HEAD of a URL whose document is built and current skips Flask.

    Every request, fast or not, is counted and timed here (feedhub_http_requests_total and
    feedhub_http_request_duration_seconds, by route and status).
    """

    def __init__(
        self,
        app: WsgiApp,
        cache: ResponseCache,
        version: Callable[[str | None], int],
        max_age: Callable[[], int | None],
    ) -> None:
        self.app = app
        self.cache = cache
        self.version = version
        self.max_age = max_age
        self.meter = RequestMeter()
        self._urls: OrderedDict[tuple[str, str], tuple[Hashable, str | None, str]] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, environ: Environ, key: Hashable, version_key: str | None) -> None:
        """The Flask route that built ``key`` for this URL says so; canonical URLs only."""
        query = environ.get("QUERY_STRING", "")
        if query and not _is_canonical(query):
            return  # `?utm_source=…` and the like would fill the table
        with self._lock:
            route = environ.get(ROUTE_KEY, UNROUTED)
            self._urls[(environ.get("PATH_INFO", ""), query)] = (key, version_key, route)
            while len(self._urls) > _REMEMBERED_URLS:
                self._urls.popitem(last=False)

    def __call__(self, environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = time.perf_counter()
        if environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            found = self._urls.get((environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", "")))
            if found is not None:
                key, version_key, route = found
                representation = self.cache.get(key, self.version(version_key))
                if representation is not None:
                    status, headers, body = respond(representation, environ, self.max_age())
                    start_response(status, headers)
                    self.meter.observe(route, status[:3], time.perf_counter() - started)
                    return [body]
        answered = "500"

        def start(status: str, headers: Headers, exc_info: Any = None) -> Any:
            nonlocal answered
            answered = status[:3]
            return start_response(status, headers, exc_info)

        try:
            return self.app(environ, start)
        finally:
            self.meter.observe(environ.get(ROUTE_KEY, UNROUTED), answered, time.perf_counter() - started)


def _is_canonical(query: str) -> bool:
    name, _, value = query.partition("=")
    if name == "page":
        return page_number(value) is not None and value[:1] != "0"
    return name == "format" and value.isascii() and value.isalpha()
