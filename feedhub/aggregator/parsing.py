"""Read a source's answer as its type reads it, in processes of their own where there are cores.

Parsing (feedparser, nh3, lxml) is most of a poll's CPU time and holds the GIL: the poller's
threads wait for the network together, but would parse one at a time on one core. A pool of
processes parses on every core. A process that dies on a document (a crash in a C parser, or
killed) breaks the pool and every parse it held: each of those documents is parsed again in a
process of its own, so only the document that kills that one too is an error, its source's.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from feedhub.aggregator.entries import ParsedFeed, ParseError, parse_feed
from feedhub.aggregator.html_page import parse_html_page
from feedhub.aggregator.json_api import parse_json_api
from feedhub.aggregator.sources import Source
from feedhub.processes import process_pool

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
    """Parses answers in `processes` processes (0: in the calling thread), shared by the pollers
    of this process."""

    def __init__(self, processes: int) -> None:
        self.processes = processes

    def parse(self, source: Source, body: bytes, headers: Mapping[str, str], url: str) -> ParsedFeed:
        if not self.processes:
            return parse_answer(source, body, headers, url)
        pool = _shared_pool(self.processes)
        try:
            future = pool.submit(parse_answer, source, body, dict(headers), url)
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
                return alone.submit(parse_answer, source, body, dict(headers), url).result()
            except BrokenProcessPool:
                raise ParseError(
                    f"the parsing process died on this answer ({len(body):,} bytes): "
                    "killed, or a crash in a parser"
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
