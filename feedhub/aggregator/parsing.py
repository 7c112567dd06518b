"""Read a source's answer as its type reads it (and an article page, for full text), in processes
of their own where there are cores.

Parsing (feedparser, nh3, lxml, trafilatura) is most of a poll's CPU time and holds the GIL: the
poller's threads wait for the network together, but would parse one at a time on one core. A pool
of processes parses on every core, one document at a time each: trafilatura is not safe in
threads (concurrent extract() calls crash the process: adbar/trafilatura#840, #925), so with no
processes (`parse_processes: 0`) extraction takes turns. A process that dies on a document (a
crash in a C parser, or killed) breaks the pool and every parse it held: each of those documents
is parsed again in a process of its own, so only the document that kills that one too is an error,
its source's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from feedhub.aggregator.entries import ParsedFeed, ParseError, parse_feed
from feedhub.aggregator.extraction import extract_article
from feedhub.aggregator.html_page import parse_html_page
from feedhub.aggregator.json_api import parse_json_api
from feedhub.aggregator.sources import Source
from feedhub.processes import process_pool

_Parsed = TypeVar("_Parsed")
_extracting = threading.Lock()  # extraction in this process's threads, one at a time

# A process parses this many documents, then a new one takes over: memory a parser kept (or
# fragmented) is given back.
DOCUMENTS_PER_PROCESS = 500


def parse_answer(source: Source, body: bytes, headers: Mapping[str, str], url: str) -> ParsedFeed:
    """What the source's answer says, read as its type reads it."""
    if source.json_api is not None:
        return parse_json_api(body, url, source.json_api, source.timezone)
    if source.html_page is not None:
        return parse_html_page(body, headers, url, source.html_page, source.timezone)
    return parse_feed(body, headers, url, source.timezone)


class Parsing:
    """Parses answers and extracts article pages in `processes` processes (0: in the calling
    thread), shared by the pollers of this process."""

    def __init__(self, processes: int) -> None:
        self.processes = processes

    def parse(self, source: Source, body: bytes, headers: Mapping[str, str], url: str) -> ParsedFeed:
        return self._run(
            parse_answer, (source, body, dict(headers), url), f"this answer ({len(body):,} bytes)"
        )

    def extract(self, page: bytes, url: str) -> str | None:
        """An article page's main content as sanitized HTML, or None (see extract_article)."""
        if not self.processes:
            with _extracting:
                return extract_article(page, url)
        return self._run(extract_article, (page, url), f"this page ({len(page):,} bytes)")

    def _run(self, work: Callable[..., _Parsed], args: tuple[object, ...], what: str) -> _Parsed:
        """`work(*args)` in the shared pool, or alone in a process of its own when the pool broke
        under it; ParseError, naming `what` was worked on, when that process dies too."""
        if not self.processes:
            return work(*args)
        pool = _shared_pool(self.processes)
        try:
            future = pool.submit(work, *args)
        except (BrokenProcessPool, RuntimeError):  # broken, or shut down by a thread that found it so
            future = None
        if future is not None:
            try:
                return future.result()
            except BrokenProcessPool:
                pass
        _replace_broken(self.processes, pool)
        with process_pool(1, __name__) as alone:
            try:
                return alone.submit(work, *args).result()
            except BrokenProcessPool:
                raise ParseError(
                    f"the parsing process died on {what}: killed, or a crash in a parser"
                ) from None


_pools: dict[int, ProcessPoolExecutor] = {}
_pools_lock = threading.Lock()


def _shared_pool(processes: int) -> ProcessPoolExecutor:
    with _pools_lock:
        pool = _pools.get(processes)
        if pool is None:
            pool = _pools[processes] = process_pool(
                processes, __name__, max_tasks_per_child=DOCUMENTS_PER_PROCESS
            )
        return pool


def _replace_broken(processes: int, broken: ProcessPoolExecutor) -> None:
    """The next parse gets a new pool (once, however many threads found this one broken)."""
    with _pools_lock:
        if _pools.get(processes) is broken:
            del _pools[processes]
    broken.shutdown(wait=False, cancel_futures=True)
