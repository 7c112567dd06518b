"""Prometheus metrics, added up across every process of a run: web workers and the scheduler.

prometheus_client's multiprocess mode keeps each process's counters in files of one folder.
feedhub picks and tidies that folder itself: ``<data_dir>/metrics/run-<pid>``, where pid is
the process that owns the run (`feedhub serve`, a gunicorn master, a lone `feedhub poll`).
Workers and the scheduler inherit it through PROMETHEUS_MULTIPROC_DIR; a run folder whose
owner is gone is removed when the next run starts, so counters start again at zero with the
service, as Prometheus expects of a restart. /metrics adds up the folders of every live run
on the data folder (a web server and a scheduler started apart are one picture).

What is true at the moment of a scrape (posts in the index, errors in the aggregator's
state, whether a scheduler runs) is read then, not kept in files.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

FOLDER_ENV = "PROMETHEUS_MULTIPROC_DIR"
METRICS_FOLDER = "metrics"
_RUN_PREFIX = "run-"
CONTENT_TYPE = CONTENT_TYPE_LATEST

# Not in prometheus_client's global registry: /metrics reads them from the files of every process.
HTTP_REQUESTS = Counter(
    "feedhub_http_requests", "HTTP requests answered, by route and status", ["route", "status"], registry=None
)
HTTP_DURATION = Histogram(
    "feedhub_http_request_duration_seconds",
    "Time to answer an HTTP request, by route",
    ["route"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
    registry=None,
)
FEED_BUILDS = Histogram(
    "feedhub_feed_build_duration_seconds",
    "Feeds built (not answered from the cache) and the time each took, by format",
    ["format"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=None,
)
POLLS = Counter(
    "feedhub_polls", "Polls of upstream sources, by source and result", ["source", "result"], registry=None
)
ENTRIES_MERGED = Counter(
    "feedhub_entries_merged",
    "Upstream entries written as posts (new or updated), by source",
    ["source"],
    registry=None,
)


def record_in_run_folder(data_dir: Path, owner_pid: int) -> Path:
    """Make this process keep its metrics in files, in its run's folder (inherited when set)."""
    inherited = os.environ.get(FOLDER_ENV)
    if inherited:
        folder = Path(inherited)
    else:
        folder = data_dir / METRICS_FOLDER / f"{_RUN_PREFIX}{owner_pid}"
        _remove_dead_runs(data_dir / METRICS_FOLDER, keep=folder)
        os.environ[FOLDER_ENV] = str(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if not getattr(values.ValueClass, "_multiprocess", False):
        # Chosen when prometheus_client was imported; no metric has a value yet (all have labels).
        values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    return folder


def _remove_dead_runs(parent: Path, keep: Path) -> None:
    for folder in _run_folders(parent, alive=False):
        if folder != keep:
            shutil.rmtree(folder, ignore_errors=True)


def _run_folders(parent: Path, alive: bool) -> list[Path]:
    try:
        folders = [path for path in parent.iterdir() if path.name.startswith(_RUN_PREFIX)]
    except FileNotFoundError:
        return []
    return [folder for folder in folders if _is_alive(folder.name.removeprefix(_RUN_PREFIX)) == alive]


def _is_alive(pid: str) -> bool:
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunFiles:
    """The counters and histograms of every process of every live run on the data folder."""

    def __init__(self, data_dir: Path) -> None:
        self.parent = data_dir / METRICS_FOLDER

    def describe(self) -> list[Metric]:
        return []  # nothing to check at registration: the names are feedhub's own

    def collect(self) -> Iterator[Metric]:
        folders = set(_run_folders(self.parent, alive=True))
        own = os.environ.get(FOLDER_ENV)
        if own:
            folders.add(Path(own))
        files = [name for folder in sorted(folders) for name in glob.glob(str(folder / "*.db"))]
        yield from MultiProcessCollector.merge(files, accumulate=True)  # type: ignore[no-untyped-call]


def gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


class Scrape:
    """The /metrics document: the files of every process, and what ``now`` says at this moment."""

    def __init__(self, data_dir: Path, now: Callable[[], Iterator[Metric]]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(RunFiles(data_dir))
        self.registry.register(_Now(now))

    def document(self) -> bytes:
        return generate_latest(self.registry)


class _Now:
    def __init__(self, now: Callable[[], Iterator[Metric]]) -> None:
        self._now = now

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        return self._now()


class RequestMeter:
    """Counts and times each answered request; the labelled children are looked up once."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str], Counter] = {}
        self._durations: dict[str, Histogram] = {}

    def observe(self, route: str, status: str, seconds: float) -> None:
        count = self._counts.get((route, status))
        if count is None:
            count = self._counts.setdefault((route, status), HTTP_REQUESTS.labels(route, status))
        duration = self._durations.get(route)
        if duration is None:
            duration = self._durations.setdefault(route, HTTP_DURATION.labels(route))
        count.inc()
        duration.observe(seconds)


@contextlib.contextmanager
def feed_build(fmt: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        FEED_BUILDS.labels(fmt).observe(time.perf_counter() - started)


def record_poll(source: str, result: str, merged: int) -> None:
    """Count one poll of `source` (its PollResult's value) and the entries it merged."""
    POLLS.labels(source, result).inc()
    if merged:
        ENTRIES_MERGED.labels(source).inc(merged)
