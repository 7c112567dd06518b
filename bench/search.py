"""Search as a reader meets it: a page of results over HTTP from `feedhub serve`, one request at
a time, for queries made of the store's own titles (so each finds something), against the same
server's smallest cached document (the floor of one request there)."""

from __future__ import annotations

import random
import re
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from bench.measure import feedhub_serve, get
from feedhub.config import load_config
from feedhub.storage import open_storage

_CJK_RUN = re.compile(r"[\u4e00-\u9fff]{4,}")


@dataclass(frozen=True)
class SearchTimes:
    newest_p50: float  # ms
    newest_p90: float
    relevance_p50: float
    floor_p50: float  # the cached stylesheet
    queries: int


def sample_queries(config_path: Path, count: int, seed: int = 13) -> list[str]:
    """Queries as readers type them, from random titles: two characters (most Chinese words),
    four in a row, two words of two, one character."""
    backend = open_storage(load_config(config_path)).index
    with backend.reading() as conn:
        titles = [row["title"] for row in conn.execute("SELECT title FROM posts").fetchall()]
    rng = random.Random(seed)
    runs = [
        run for title in rng.sample(titles, min(len(titles), 20 * count)) for run in _CJK_RUN.findall(title)
    ]
    queries = []
    for number in range(count):
        run = rng.choice(runs)
        start = rng.randrange(len(run) - 3)
        kind = number % 10
        if kind < 4:
            queries.append(run[start : start + 2])
        elif kind < 7:
            queries.append(run[start : start + 4])
        elif kind < 9:
            other = rng.choice(runs)
            queries.append(f"{run[start : start + 2]} {other[:2]}")
        else:
            queries.append(run[start])
    return queries


def measure(config_path: Path, log: Path, queries: list[str]) -> SearchTimes:
    server, _ = feedhub_serve(config_path, log)
    try:
        floor = _times(server.url, ["/feed.xsl"] * len(queries))
        newest = _times(server.url, [f"/search?{urlencode({'q': query})}" for query in queries])
        relevance = _times(
            server.url, [f"/search?{urlencode({'q': query, 'sort': 'relevance'})}" for query in queries]
        )
    finally:
        server.stop()
    return SearchTimes(
        statistics.median(newest),
        statistics.quantiles(newest, n=10)[-1],
        statistics.median(relevance),
        statistics.median(floor),
        len(queries),
    )


def _times(base: str, paths: list[str]) -> list[float]:
    """Milliseconds of each GET (after one unmeasured round to warm the caches of the OS)."""
    for path in paths[:20]:
        get(base + path)
    times = []
    for path in paths:
        begin = time.perf_counter()
        status, _, _ = get(base + path)
        times.append((time.perf_counter() - begin) * 1000)
        if status != 200:
            raise RuntimeError(f"{path}: {status}")
    return times
