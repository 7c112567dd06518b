"""Full text for feeds that carry only a teaser: each new or changed entry's article, fetched
and reduced to its main content.

The article is fetched with the feeds' own polite fetcher (timeouts, a streamed size cap,
conditional GET, the address policy), at most two requests at a time to one host and
``full_text_delay`` apart; its main content is extracted with trafilatura (chosen by measurement
on the hand-marked article corpus: docs/full-text.md), sanitized by the one policy with its URLs
made absolute against the article's, and kept when it says more than the feed did. Extraction runs
in the poller's parsing processes (feedhub/aggregator/parsing.py): never in two threads at once. Extractions
are cached by URL with their validators, so an unchanged article is never downloaded twice.
Whatever fails, the feed's own content stays and the failure is told with its reason.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

from feedhub.addresses import AddressPolicy, origin
from feedhub.aggregator.entries import ParseError, UpstreamEntry
from feedhub.aggregator.fetch import Fetcher, FetchError
from feedhub.aggregator.parsing import Parsing
from feedhub.aggregator.sources import Source
from feedhub.aggregator.state import Validators
from feedhub.errors import StorageError
from feedhub.render import html_to_text
from feedhub.storage.base import Backend
from feedhub.storage.schema import Schema, migrate
from feedhub.text import quoted

log = logging.getLogger(__name__)

PER_HOST = 2  # requests at a time to one host
ARTICLE_MAX_BYTES = 5 * 1024 * 1024  # an article page, after decompression
CACHE_DAYS = 30  # extractions unused for this long are dropped
_HTML_TYPES = ("text/html", "application/xhtml+xml")

ARTICLE_SCHEMA = Schema(
    part="articles",
    version=1,
    tables="""
CREATE TABLE articles (
    url TEXT PRIMARY KEY,
    etag TEXT,
    last_modified TEXT,
    html TEXT,                     -- the extracted, sanitized article; NULL: nothing was found
    fetched_at DOUBLE PRECISION NOT NULL
)
""",
    derived_tables=("articles",),  # a cache: rebuilt by fetching again
)


@dataclass(frozen=True)
class FullTextReport:
    fetched: int = 0  # articles asked for
    used: int = 0  # articles that replaced the feed's content
    failures: tuple[str, ...] = ()  # "<url>: <reason>"

    def plus(self, other: FullTextReport) -> FullTextReport:
        return FullTextReport(
            self.fetched + other.fetched, self.used + other.used, self.failures + other.failures
        )

    def summary(self) -> str | None:
        """What /status shows, when an article failed."""
        if not self.failures:
            return None
        return (
            f"full text: {len(self.failures)} of {self.fetched} articles failed (first: {self.failures[0]})"
        )


class _HostGate:
    """At most PER_HOST requests at a time to one host, each at least `delay` after the last began
    (in real time, whatever clock the poller is given)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: dict[str, threading.Semaphore] = {}
        self._next: dict[str, float] = {}

    @contextmanager
    def turn(self, host: str, delay: float) -> Iterator[None]:
        with self._lock:
            slots = self._slots.setdefault(host, threading.Semaphore(PER_HOST))
        with slots:
            with self._lock:
                now = time.monotonic()
                start = max(now, self._next.get(host, now))
                self._next[host] = start + delay
            if start > now:
                time.sleep(start - now)
            yield


class ArticleCache:
    """Extractions by article URL, with the validators of the page they came from."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        migrate(backend, ARTICLE_SCHEMA)

    def get(self, url: str) -> tuple[Validators, str | None] | None:
        with self.backend.reading() as conn:
            row = conn.execute(
                "SELECT etag, last_modified, html FROM articles WHERE url=?", (url,)
            ).fetchone()
        return (Validators(row["etag"], row["last_modified"]), row["html"]) if row else None

    def put(self, url: str, validators: Validators, html: str | None, now: float) -> None:
        with self.backend.transaction() as conn:
            conn.execute(
                "INSERT INTO articles VALUES (?, ?, ?, ?, ?) ON CONFLICT (url) DO UPDATE SET "
                "etag=excluded.etag, last_modified=excluded.last_modified, html=excluded.html, "
                "fetched_at=excluded.fetched_at",
                (url, validators.etag, validators.last_modified, html, now),
            )

    def touch(self, url: str, now: float) -> None:
        with self.backend.transaction() as conn:
            conn.execute("UPDATE articles SET fetched_at=? WHERE url=?", (now, url))

    def prune(self, now: float) -> None:
        with self.backend.transaction() as conn:
            conn.execute("DELETE FROM articles WHERE fetched_at < ?", (now - CACHE_DAYS * 86400,))


class FullText:
    def __init__(
        self, fetcher: Fetcher, cache: ArticleCache, parsing: Parsing, clock: Callable[[], float] = time.time
    ) -> None:
        self.fetcher = fetcher
        self.parsing = parsing
        self.cache = cache
        self.clock = clock
        self._gate = _HostGate()
        self._pruned_at = 0.0

    def enrich(
        self, source: Source, entries: list[UpstreamEntry]
    ) -> tuple[list[UpstreamEntry], FullTextReport]:
        """The entries, each with its article where that says more than the feed did."""
        wanted = [entry for entry in entries if entry.link]
        if not wanted:
            return entries, FullTextReport()
        self._prune_now_and_then()
        links = list(dict.fromkeys(entry.link for entry in wanted if entry.link))
        with ThreadPoolExecutor(max_workers=PER_HOST * 2, thread_name_prefix="full-text") as pool:
            found = dict(zip(links, pool.map(lambda link: self._article(source, link), links), strict=True))
        enriched, used, failures = [], 0, []
        for entry in entries:
            article, failure = found.get(entry.link or "", (None, None))
            if failure:
                failures.append(f"{entry.link}: {failure}")
            if article and len(html_to_text(article)) > len(html_to_text(entry.html)):
                entry = entry.with_article(article)
                used += 1
            enriched.append(entry)
        for failure in failures:
            log.warning("source %s: full text: %s", source.id, failure)
        return enriched, FullTextReport(len(links), used, tuple(failures))

    def _article(self, source: Source, url: str) -> tuple[str | None, str | None]:
        """(the article's HTML or None, why it could not be had or None)."""
        try:
            cached = self.cache.get(url)
            validators = cached[0] if cached else Validators()
            policy = AddressPolicy(origin(source.url), source.allow_private_addresses)
            with self._gate.turn(urlsplit(url).hostname or "", source.full_text_delay):
                fetched = self.fetcher.fetch(url, validators, source.timeout, ARTICLE_MAX_BYTES, policy)
            now = self.clock()
            if fetched.not_modified and cached:
                self.cache.touch(url, now)
                return cached[1], None if cached[1] else "no article text found in the page"
            kind = fetched.headers.get("content-type", "text/html").split(";")[0].strip().lower()
            if kind not in _HTML_TYPES:
                return None, f"not an HTML page ({quoted(kind)})"
            try:
                html = self.parsing.extract(fetched.body or b"", fetched.url)
            except ParseError as exc:  # the page killed its parsing process, twice
                self.cache.put(url, fetched.validators, None, now)  # not again until the page changes
                return None, str(exc)
            self.cache.put(url, fetched.validators, html, now)
            return html, None if html else "no article text found in the page"
        except FetchError as exc:
            return None, exc.reason
        except StorageError as exc:
            return None, f"the article cache failed: {exc}"
        except Exception as exc:  # an extractor bug met on a hostile page: this article only
            log.exception("source %s: full text of %s failed unexpectedly", source.id, url)
            return None, f"extraction failed: {type(exc).__name__}: {quoted(str(exc))}"

    def _prune_now_and_then(self) -> None:
        now = self.clock()
        if now - self._pruned_at < 3600:
            return
        self._pruned_at = now
        try:
            self.cache.prune(now)
        except StorageError as exc:
            log.warning("cannot prune the article cache: %s", exc)
