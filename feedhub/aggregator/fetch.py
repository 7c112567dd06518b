"""Fetch one upstream feed politely: timeouts, a size cap while streaming, conditional GET.

feedparser is never given a URL (it has no timeout and no size limit); it gets the
bytes and headers fetched here. Redirects are followed by hand so that a permanent
move can be recorded, and every failure becomes a FetchError with a reason an
operator can read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import requests

from feedhub.addresses import AddressPolicy
from feedhub.aggregator.state import Validators
from feedhub.errors import FeedhubError
from feedhub.guarded_http import ReadRefused, failure_reason, new_session, read_capped
from feedhub.limits import MAX_REDIRECTS
from feedhub.urls import is_http_url

PERMANENT = frozenset({301, 308})
REDIRECTS = frozenset({301, 302, 303, 307, 308})
CONNECT_TIMEOUT = 10.0
TOTAL_TIMEOUT_FACTOR = 4
MAX_RETRY_AFTER = 7 * 86400
ACCEPT = (
    "application/atom+xml, application/rss+xml, application/feed+json, application/rdf+xml;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5"
)


@dataclass(frozen=True)
class Fetched:
    status: int  # 200, or 304 (not modified: no body)
    body: bytes | None
    headers: dict[str, str]  # lower-case names
    url: str  # where the body came from, after redirects
    permanent_url: str | None  # where a chain of 301/308 from the start leads, if it moved
    validators: Validators

    @property
    def not_modified(self) -> bool:
        return self.status == 304


class FetchError(FeedhubError):
    def __init__(
        self, reason: str, status: int | None = None, retry_at: float | None = None, gone: bool = False
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_at = retry_at  # from Retry-After: do not ask again before this time
        self.gone = gone  # 410: the feed is gone for good


class Fetcher:
    def __init__(self, user_agent: str, clock: Callable[[], float] = time.time) -> None:
        self.user_agent = user_agent
        self.clock = clock
        self._local = threading.local()

    def fetch(
        self, url: str, validators: Validators, timeout: float, max_bytes: int, policy: AddressPolicy
    ) -> Fetched:
        """GET ``url``; every connection (redirects included) obeys the address policy."""
        if url.startswith("file:"):
            return _fetch_file(url, validators, max_bytes)
        return self._fetch_http(url, validators, timeout, max_bytes, policy)

    def _session(self, guarded: bool) -> requests.Session:
        # One session per thread: requests' sessions are not thread-safe, but keep-alive helps.
        sessions: dict[bool, requests.Session] = self._local.__dict__.setdefault("sessions", {})
        if guarded not in sessions:
            session = sessions[guarded] = new_session(self.user_agent, guarded)
            session.headers["Accept"] = ACCEPT
        return sessions[guarded]

    def _fetch_http(
        self, url: str, validators: Validators, timeout: float, max_bytes: int, policy: AddressPolicy
    ) -> Fetched:
        headers = {}
        if validators.etag:
            headers["If-None-Match"] = validators.etag
        if validators.last_modified:
            headers["If-Modified-Since"] = validators.last_modified
        # `timeout` bounds each wait; this bounds the whole download (a server sending a byte a second).
        deadline = time.monotonic() + TOTAL_TIMEOUT_FACTOR * timeout
        current, permanent, moving = url, None, True
        for hop in range(MAX_REDIRECTS + 1):
            try:
                response = self._get(current, headers, timeout, policy.guards(current))
            except FetchError as exc:
                if not hop:
                    raise
                raise FetchError(f"redirected to {current}: {exc.reason}", exc.status) from None
            with response:
                if response.status_code not in REDIRECTS or "location" not in response.headers:
                    return self._answer(response, current, permanent, validators, max_bytes, deadline)
                try:
                    target = urljoin(current, response.headers["location"])
                except ValueError:
                    target = response.headers["location"]
                if not is_http_url(target):
                    raise FetchError(f"redirected to a non-HTTP URL: {target}", response.status_code)
                # Only an unbroken chain of permanent redirects from the start moves the feed.
                moving = moving and response.status_code in PERMANENT
                if moving:
                    permanent = target
                current = target
        raise FetchError(f"more than {MAX_REDIRECTS} redirects (last to {current})")

    def _get(self, url: str, headers: dict[str, str], timeout: float, guarded: bool) -> requests.Response:
        try:
            return self._session(guarded).get(
                url, headers=headers, timeout=(CONNECT_TIMEOUT, timeout), stream=True, allow_redirects=False
            )
        except requests.RequestException as exc:
            raise FetchError(failure_reason(exc, timeout, "allow_private_addresses")) from None

    def _answer(
        self,
        response: requests.Response,
        url: str,
        permanent: str | None,
        sent: Validators,
        max_bytes: int,
        deadline: float,
    ) -> Fetched:
        status = response.status_code
        headers = {name.lower(): value for name, value in response.headers.items()}
        received = Validators(headers.get("etag"), headers.get("last-modified"))
        if status == 304:
            # A 304 may carry fresher validators; otherwise the ones we sent still hold.
            kept = Validators(received.etag or sent.etag, received.last_modified or sent.last_modified)
            return Fetched(304, None, headers, url, permanent, kept)
        if status == 410:
            raise FetchError("410 Gone: the feed was removed for good", status, gone=True)
        if status in (429, 503):
            retry_at = self._retry_at(headers.get("retry-after"))
            raise FetchError(f"{status} {response.reason}", status, retry_at=retry_at)
        if status != 200:
            raise FetchError(f"{status} {response.reason}", status)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes and "content-encoding" not in headers:
            raise FetchError(f"larger than the {max_bytes:,}-byte limit ({int(declared):,} bytes)", status)
        try:
            body = read_capped(response, max_bytes, deadline)
        except ReadRefused as exc:
            raise FetchError(exc.reason, status) from None
        return Fetched(200, body, headers, url, permanent, received)

    def _retry_at(self, value: str | None) -> float | None:
        """Retry-After as seconds or an HTTP date; None when absent or unreadable."""
        if not value:
            return None
        now = self.clock()
        if value.strip().isdigit():
            return now + min(int(value), MAX_RETRY_AFTER)
        try:
            when = parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError):
            return None
        return min(max(when, now), now + MAX_RETRY_AFTER)


def _fetch_file(url: str, validators: Validators, max_bytes: int) -> Fetched:
    path = Path(unquote(urlsplit(url).path))
    try:
        stat = path.stat()
        # A local file's validator: its modification time and size.
        etag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
        if etag == validators.etag:
            return Fetched(304, None, {}, url, None, validators)
        if stat.st_size > max_bytes:
            raise FetchError(f"larger than the {max_bytes:,}-byte limit ({stat.st_size:,} bytes)")
        body = path.read_bytes()
    except OSError as exc:
        raise FetchError(f"cannot read {path}: {exc.strerror}") from None
    return Fetched(200, body, {}, url, None, Validators(etag=etag))
