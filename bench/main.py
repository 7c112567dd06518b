"""Run the benchmark suite, print one table, and write it to docs/performance.md.

Every figure that depends on the machine is shown with a baseline measured in the
same run (a bare Flask app, nginx, Jekyll, feedparser alone, or a fixed CPU job),
and the ratio between the two; the targets are those of the performance issue.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import feedparser
import nh3
import requests

from bench import jekyll, search
from bench.corpus import REAL_WORLD, category_count, new_post, write_store
from bench.measure import (
    REPO,
    bare_app,
    calibrate,
    feedhub_serve,
    get,
    peak_rss_mb,
    timed_run,
    wait_until,
    wrk,
)
from bench.upstream import start_nginx, stop, write_feeds, write_sources
from feedhub import __version__
from feedhub.config import load_config
from feedhub.index.write import open_writer
from feedhub.pages import Pages
from feedhub.posts import write_atomically
from feedhub.site import open_site
from feedhub.storage import open_storage


@dataclass
class Row:
    metric: str
    size: str
    value: float | None
    unit: str
    baseline_name: str
    baseline: float | None
    target: str = ""
    met: bool | None = None

    @property
    def ratio(self) -> str:
        if self.value is None or not self.baseline:
            return "—"
        ratio = self.value / self.baseline
        return f"{ratio:.2f}×" if ratio >= 0.1 else f"{ratio:.2g}×"


def label(size: int) -> str:
    return f"{size // 1000}k" if size >= 1000 else str(size)


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "skipped"
    if unit in ("req/s",):
        return f"{value:,.0f} {unit}"
    if unit in ("s", "ms", "MB"):
        return f"{value:,.3g} {unit}" if value < 100 else f"{value:,.0f} {unit}"
    return f"{value:,.3g} {unit}"


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work: Path = args.workdir
        self.work.mkdir(parents=True, exist_ok=True)
        self.logs = self.work / "logs"
        self.logs.mkdir(exist_ok=True)
        self.rows: list[Row] = []
        self.database: str | None = None  # a PostgreSQL URL for the stores' config; None: SQLite

    def add(self, row: Row) -> None:
        self.rows.append(row)
        print(
            f"  {row.metric} [{row.size}]: {fmt(row.value, row.unit)} vs {row.baseline_name} "
            f"{fmt(row.baseline, row.unit)} ({row.ratio})",
            flush=True,
        )

    # ---- stores -----------------------------------------------------------------------

    def store(self, size: int) -> Path:
        folder = self.work / f"store-{label(size)}"
        marker = folder / ".complete"
        if not marker.exists():
            print(f"writing a store of {size:,} posts", flush=True)
            shutil.rmtree(folder, ignore_errors=True)
            write_store(folder, size)
            marker.write_text(str(size))
        for leftover in (folder / "_posts").glob("*-bench-*.md"):
            leftover.unlink()
        (folder / "feedhub.yaml").write_text(
            "title: bench\nbase_url: https://bench.example\nlanguage: zh-CN\n"
            "posts_dir: _posts\ndata_dir: data\nsources: sources.yaml\n"
            + (f"database: {self.database}\n" if self.database else ""),
            "utf-8",
        )
        (folder / "sources.yaml").write_text("sources: []\n", "utf-8")
        return folder

    def categories(self, store: Path) -> list[tuple[str, int]]:
        """(slug, posts) of the store's categories, most posts first."""
        config = load_config(store / "feedhub.yaml")
        open_writer(config).sync_all()
        categories = open_site(config).index.categories()
        return sorted(((c.slug, c.count) for c in categories), key=lambda item: -item[1])

    # ---- measurements -----------------------------------------------------------------

    def publish_latency(self, size: int, store: Path, slug: str) -> float:
        server, _ = feedhub_serve(store / "feedhub.yaml", self.logs / f"publish-{label(size)}.log")
        try:
            time.sleep(7)  # past the workers' first full pass
            get(f"{server.url}/feeds/{slug}.atom")
            timings = []
            for number in range(5):
                title = f"基准 {size} {number} {time.time()}"
                begin = time.monotonic()
                new_post(store, number, slug, title)
                seen = wait_until(
                    partial(_in_feed, f"{server.url}/feeds/{slug}.atom", title), timeout=60, interval=0.005
                )
                timings.append(seen if seen is not None else time.monotonic() - begin)
            return statistics.median(timings)
        finally:
            server.stop()
            for leftover in (store / "_posts").glob("*-bench-*.md"):
                leftover.unlink()

    def jekyll_builds(self, size: int, store: Path, slugs: list[str]) -> tuple[float | None, float | None]:
        site = self.work / f"jekyll-{label(size)}"
        jekyll.prepare(store, slugs, site)
        budget = self.args.jekyll_budget
        fixed = jekyll.build(site, self.logs / f"jekyll-{label(size)}.log", budget, fixed=True)
        packaged = jekyll.build(site, self.logs / f"jekyll-packaged-{label(size)}.log", budget, fixed=False)
        shutil.rmtree(site / "_site", ignore_errors=True)
        return fixed, packaged

    def startup(self, store: Path, slug: str, cold: bool) -> float:
        if cold:
            shutil.rmtree(store / "data", ignore_errors=True)
        name = "cold" if cold else "warm"
        server, seconds = feedhub_serve(
            store / "feedhub.yaml", self.logs / f"start-{name}.log", f"/feeds/{slug}.atom"
        )
        server.stop()
        return seconds

    def rebuild_ms(self, store: Path, slug: str) -> float:
        """A category feed built again after one of its posts changed (in process: no HTTP)."""
        config = load_config(store / "feedhub.yaml")
        index = open_writer(config)
        index.sync_all()
        site = open_site(config)
        pages = Pages(site)
        pages.feed(slug, "atom", 1)
        post = site.index.posts(slug, None, 1)[0].entry
        path = config.posts_dir / post.path
        original = path.read_bytes()
        timings = []
        try:
            for number in range(21):
                path.write_bytes(original + f"\n<!-- edit {number} -->\n".encode())
                index.sync_paths([post.path])
                begin = time.perf_counter()
                pages.feed(slug, "atom", 1)
                timings.append((time.perf_counter() - begin) * 1000)
        finally:
            path.write_bytes(original)
            index.sync_paths([post.path])
        return statistics.median(timings)

    def load(self, store: Path, slug: str, size: int) -> None:
        seconds = self.args.duration
        server, _ = feedhub_serve(store / "feedhub.yaml", self.logs / "load.log")
        body_file = self.work / "feed.bin"
        try:
            time.sleep(7)
            url = f"{server.url}/feeds/{slug}.atom"
            _, headers, body = get(url)
            body_file.write_bytes(body)
            wrk(url, 8, 2, repeats=1)  # warm-up
            ours = {connections: wrk(url, connections, seconds) for connections in (8, 64)}
            not_modified = wrk(url, 8, seconds, {"If-None-Match": headers["etag"]})
            worker_rss = max(peak_rss_mb(pid) for pid in server.worker_pids())
        finally:
            server.stop()
        bare, _ = bare_app(body_file, headers["content-type"], self.logs / "bare.log", workers=2, threads=4)
        try:
            wrk(f"{bare.url}/feed", 8, 2, repeats=1)
            theirs = {connections: wrk(f"{bare.url}/feed", connections, seconds) for connections in (8, 64)}
            small = wrk(f"{bare.url}/small", 8, seconds)
            bare_rss = max(peak_rss_mb(pid) for pid in bare.worker_pids())
        finally:
            bare.stop()
        kb = len(body) // 1024
        for connections in (8, 64):
            ok = ours[connections].requests_per_second >= 0.9 * theirs[connections].requests_per_second
            self.add(
                Row(
                    f"cached {kb} KB feed (metrics on), {connections} connections",
                    label(size),
                    ours[connections].requests_per_second,
                    "req/s",
                    "bare Flask app, same bytes",
                    theirs[connections].requests_per_second,
                    "≥ 0.9× bare",
                    ok,
                )
            )
            self.add(
                Row(
                    f"  p99 latency, {connections} connections",
                    label(size),
                    ours[connections].p99_ms,
                    "ms",
                    "bare Flask app",
                    theirs[connections].p99_ms,
                )
            )
        ok = not_modified.requests_per_second >= 0.9 * small.requests_per_second
        self.add(
            Row(
                "304 revalidation, 8 connections",
                label(size),
                not_modified.requests_per_second,
                "req/s",
                "bare app's smallest response",
                small.requests_per_second,
                "≥ 0.9× bare",
                ok,
            )
        )
        self.add(
            Row(
                "peak RSS per web worker",
                label(size),
                worker_rss,
                "MB",
                "bare Flask worker",
                bare_rss,
                "≤ 150 MB",
                worker_rss <= 150,
            )
        )
        self.feed_bytes = body

    def export(self, store: Path, size: int, jekyll_seconds: float | None) -> Path:
        """`feedhub build` of the store as Jekyll builds it, from its posts: no HTML rendered before
        (the index is synced, as a served site's is); then again with nothing changed."""
        out = self.work / "export"
        shutil.rmtree(out, ignore_errors=True)
        with open_storage(load_config(store / "feedhub.yaml")).index.transaction() as conn:
            conn.execute("DELETE FROM rendered")
        command = [
            sys.executable,
            "-m",
            "feedhub",
            "build",
            str(out),
            "--config",
            str(store / "feedhub.yaml"),
        ]
        first = timed_run(command, self.logs / "export.log")
        second = timed_run(command, self.logs / "export-again.log")
        assert first is not None and second is not None  # no timeout given
        self.add(
            Row(
                "feedhub build (static export)",
                label(size),
                first[0],
                "s",
                "Jekyll + jekyll-feed build",
                jekyll_seconds,
                "≤ 0.1× Jekyll",
                first[0] * 10 <= jekyll_seconds if jekyll_seconds else None,
            )
        )
        big = size >= 100_000
        self.add(
            Row(
                "  again, nothing changed",
                label(size),
                second[0],
                "s",
                "the first export",
                first[0],
                "< 5 s" if big else "",
                second[0] < 5 if big else None,
            )
        )
        return out

    def exported_nginx(self, out: Path, slug: str, size: int) -> None:
        plain = self.work / "plain"
        plain.mkdir(exist_ok=True)
        (plain / "feed.atom").write_bytes((out / "feeds" / f"{slug}.atom").read_bytes())
        # the snippet `feedhub build` wrote (it sets the root itself)
        snippet = f"include {out}/.feedhub/nginx.conf;"
        exported, exported_url = start_nginx(
            None, self.work / "nginx-export", snippet, probe=f"/feeds/{slug}.atom"
        )
        try:
            ours = wrk(f"{exported_url}/feeds/{slug}.atom", 64, self.args.duration)
        finally:
            stop(exported)
        bare, bare_url = start_nginx(plain, self.work / "nginx-plain", probe="/feed.atom")
        try:
            theirs = wrk(f"{bare_url}/feed.atom", 64, self.args.duration)
        finally:
            stop(bare)
        self.add(
            Row(
                "nginx on the exported feed, 64 connections",
                label(size),
                ours.requests_per_second,
                "req/s",
                "nginx on a plain file",
                theirs.requests_per_second,
            )
        )

    def ingest(self, store: Path, size: int) -> None:
        feeds, entries = self.args.feeds, self.args.entries
        upstream = self.work / f"upstream-{feeds}x{entries}"
        if not (upstream / ".complete").exists():
            print(f"writing {feeds} upstream feeds of {entries} entries", flush=True)
            write_feeds(upstream, feeds, entries)
            (upstream / ".complete").write_text("1")
        target = self.work / "ingest-store"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir()
        copy_store(store, target)
        nginx, base = start_nginx(upstream, self.work / "nginx-upstream", probe="/feed0000.xml")
        try:
            write_sources(target / "sources.yaml", base, feeds, entries)
            first, second, merged = self.poll_twice(target / "feedhub.yaml", "ingest")
            fetch_first, fetch_second = bare_fetch_cycles(base, feeds)
        finally:
            stop(nginx)
        floor = self.add_ingest_cpu(
            f"ingest CPU per new entry ({merged:,} entries)",
            label(size),
            first[1] - second[1],
            merged,
            sorted(upstream.glob("feed*.xml")),
        )
        cores = os.cpu_count() or 1
        floor_wall = floor * merged / 1000 / cores
        self.add(
            Row(
                f"poll cycle, {feeds} feeds, first, against the floor",
                label(size),
                first[0],
                "s",
                f"the floor's CPU ÷ {cores} cores",
                floor_wall,
                "≤ 1.5× floor",
                first[0] <= 1.5 * floor_wall,
            )
        )
        self.add(
            Row(
                f"poll cycle, {feeds} feeds, first",
                label(size),
                first[0],
                "s",
                "plain parallel download",
                fetch_first,
                "≤ 120 s",
                first[0] <= 120,
            )
        )
        self.add(
            Row(
                f"poll cycle, {feeds} feeds, all 304",
                label(size),
                second[0],
                "s",
                "plain conditional download",
                fetch_second,
                "≤ 10 s",
                second[0] <= 10,
            )
        )
        self.add(
            Row(
                "peak memory of the poller and its parsing processes (PSS)",
                label(size),
                first[2],
                "MB",
                "—",
                None,
                "≤ 200 MB",
                first[2] <= 200,
            )
        )
        shutil.rmtree(target, ignore_errors=True)
        self.ingest_real_world()

    def add_ingest_cpu(self, metric: str, size: str, cpu: float, merged: int, documents: list[Path]) -> float:
        """The rows of `cpu` seconds spent merging `merged` entries, against feedparser alone parsing
        the same documents, and of the least any ingest of them does; returns that floor (ms an entry)."""
        cpu_per_entry = cpu / max(merged, 1) * 1000
        parse_cpu = feedparser_cpu_per_entry(documents)
        floor_cpu, floor_entries = ingest_floor_cpu(documents, self.work / "ingest-floor")
        floor = floor_cpu / max(floor_entries, 1) * 1000
        self.add(
            Row(
                metric,
                size,
                cpu_per_entry,
                "ms",
                "feedparser alone",
                parse_cpu,
                "≤ 2.0× feedparser",
                cpu_per_entry <= 2 * parse_cpu,
            )
        )
        self.add(
            Row(
                "  the floor: parse, nh3, a file and a row per entry",
                size,
                floor,
                "ms",
                "feedparser alone",
                parse_cpu,
            )
        )
        durable_cpu, durable_entries = ingest_floor_cpu(documents, self.work / "ingest-floor", fsync=True)
        self.add(
            Row(
                "  the same with each file fsynced (an ingest that loses no entry)",
                size,
                durable_cpu / max(durable_entries, 1) * 1000,
                "ms",
                "feedparser alone",
                parse_cpu,
            )
        )
        return floor

    def poll_twice(
        self, config: Path, name: str
    ) -> tuple[tuple[float, float, float], tuple[float, float, float], int]:
        """`feedhub poll --once` twice: the first cycle, the same cycle again when every feed
        answers 304, and the entries the first merged. The CPU an entry costs is what the first
        cycle spends beyond the second (start-up, fetching and bookkeeping, which every cycle pays)."""
        command = [sys.executable, "-m", "feedhub", "poll", "--once", "--config", str(config)]
        first = timed_run([*command, "--log-level", "ERROR"], self.logs / f"{name}-first.log")
        second = timed_run([*command, "--log-level", "ERROR"], self.logs / f"{name}-second.log")
        assert first is not None and second is not None  # no timeout given
        merged = int(re.findall(r"(\d+) new posts", (self.logs / f"{name}-first.log").read_text())[-1])
        return first, second, merged

    def ingest_real_world(self) -> None:
        """The same measure over the real-world feeds of ../shared/corpus/upstream (of many
        generators, languages and sizes), into an empty store."""
        feeds = real_world_feeds()
        target = self.work / "ingest-real-world"
        shutil.rmtree(target, ignore_errors=True)
        (target / "_posts").mkdir(parents=True)
        nginx, base = start_nginx(REAL_WORLD, self.work / "nginx-real-world", probe="/SOURCES.md")
        try:
            sources = [
                {
                    "id": f"feed{number:03d}",
                    "url": f"{base}/{path.relative_to(REAL_WORLD).as_posix()}",
                    "category": path.parent.name,
                }
                for number, path in enumerate(feeds)
            ]
            # Every entry merged, as feedparser's baseline parses every entry (a new source's first
            # poll would add only its 10 newest: the row would charge the rest's parsing to them).
            limits = {"backfill": 10_000, "max_entries": 10_000}
            (target / "sources.yaml").write_text(
                json.dumps({"defaults": limits, "sources": sources}), "utf-8"
            )
            config = target / "feedhub.yaml"
            # Parsed in the poller's threads: the corpus's 2,800 entries would carry the parsing
            # pool's start-up (about a second of CPU, which no later cycle pays) as if it were theirs.
            config.write_text(
                "title: bench\nbase_url: https://bench.example\nposts_dir: _posts\ndata_dir: data\n"
                "sources: sources.yaml\nparse_processes: 0\n",
                "utf-8",
            )
            first, second, merged = self.poll_twice(config, "ingest-real-world")
        finally:
            stop(nginx)
        self.add_ingest_cpu(
            f"ingest CPU per new entry, {len(feeds)} real-world feeds ({merged:,} entries)",
            "—",
            first[1] - second[1],
            merged,
            feeds,
        )
        shutil.rmtree(target, ignore_errors=True)

    # ---- the run ----------------------------------------------------------------------

    def run(self) -> None:
        args = self.args
        unit = calibrate()
        print(f"CPU calibration: {unit * 1000:.1f} ms", flush=True)
        stores: dict[int, tuple[Path, list[tuple[str, int]]]] = {}
        exports: dict[int, Path] = {}
        for size in args.sizes:
            store = self.store(size)
            categories = self.categories(store)
            stores[size] = (store, categories)
            slug = categories[len(categories) // 4][0]  # a mid-sized category
            latency = self.publish_latency(size, store, slug)
            fixed = packaged = None
            if args.jekyll and jekyll.available():
                fixed, packaged = self.jekyll_builds(size, store, [c for c, _ in categories])
            target = "≤ 2 s" if size >= 100_000 else ""
            self.add(
                Row(
                    "publish latency (new post → its feed)",
                    label(size),
                    latency,
                    "s",
                    "Jekyll 4.3.2 full rebuild",
                    fixed,
                    target,
                    latency <= 2 if target else None,
                )
            )
            if args.jekyll:
                self.add(
                    Row(
                        "  Jekyll 4.3.1 as Debian packages it",
                        label(size),
                        packaged,
                        "s",
                        "Jekyll 4.3.2",
                        fixed,
                    )
                )
            if size >= 10_000:
                exports[size] = self.export(store, size, fixed)
        size = max(args.sizes)
        store, categories = stores[size]
        slug = categories[0][0]  # the biggest category: a full page of entries
        bare_start = self.bare_start()
        warm = self.startup(store, slug, cold=False)
        self.add(
            Row(
                "start-up to the first feed, warm index",
                label(size),
                warm,
                "s",
                "bare Flask app start-up",
                bare_start,
                "≤ 2 s" if size >= 100_000 else "",
                warm <= 2,
            )
        )
        cold = self.startup(store, slug, cold=True)
        self.add(
            Row(
                "start-up to the first feed, cold index",
                label(size),
                cold,
                "s",
                "bare Flask app start-up",
                bare_start,
                "≤ 8 s" if size >= 100_000 else "",
                cold <= 8 if size >= 100_000 else None,
            )
        )
        rebuild = self.rebuild_ms(store, slug)
        self.add(
            Row(
                "one category feed rebuilt after a post changed",
                label(size),
                rebuild,
                "ms",
                "CPU calibration job",
                unit * 1000,
                "≤ 10 ms",
                rebuild <= 10,
            )
        )
        self.search_latency(store, size)
        self.load(store, slug, size)
        self.exported_nginx(exports.get(size) or self.export(store, size, None), slug, size)
        if not args.skip_ingest:
            self.ingest(store, size)
        self.report(unit)

    def search_latency(self, store: Path, size: int) -> None:
        config = store / "feedhub.yaml"
        times = search.measure(config, self.logs / "search.log", search.sample_queries(config, 300))
        floor = "the same server's smallest cached page"
        target = "≤ 50 ms" if size >= 100_000 else ""
        met = times.newest_p50 <= 50 if target else None
        self.add(
            Row(
                "search, newest first: p50",
                label(size),
                times.newest_p50,
                "ms",
                floor,
                times.floor_p50,
                target,
                met,
            )
        )
        self.add(Row("  p90", label(size), times.newest_p90, "ms", floor, times.floor_p50))
        self.add(
            Row(
                "search, best match first: p50",
                label(size),
                times.relevance_p50,
                "ms",
                floor,
                times.floor_p50,
            )
        )

    def bare_start(self) -> float:
        body = self.work / "start.bin"
        body.write_bytes(b"x")
        server, seconds = bare_app(body, "text/plain", self.logs / "bare-start.log", workers=2, threads=4)
        server.stop()
        return seconds

    def report(self, unit: float) -> None:
        table = render_table(self.rows)
        print("\n" + table)
        if self.args.output:
            write_report(self.args, table, unit)
            (self.work / "results.json").write_text(json.dumps([row.__dict__ for row in self.rows], indent=1))


def real_world_feeds() -> list[Path]:
    """The corpus's feed documents (not its notes and licences)."""
    return sorted(
        path
        for path in REAL_WORLD.rglob("*")
        if path.is_file() and path.suffix != ".md" and "LICENSE" not in path.name
    )


def copy_store(store: Path, target: Path) -> None:
    """The store's posts (hard links: instant; new posts are new files), its config and a copy of
    its index, which the copy takes as its own: nothing is read or indexed again."""
    subprocess.run(["cp", "-al", str(store / "_posts"), str(target / "_posts")], check=True)
    shutil.copytree(store / "data", target / "data")
    shutil.copy(store / "feedhub.yaml", target / "feedhub.yaml")


def bare_fetch_cycles(base: str, feeds: int) -> tuple[float, float]:
    """Downloading every feed, then asking again with their ETags: the network part alone."""
    urls = [f"{base}/feed{feed:04d}.xml" for feed in range(feeds)]
    session = requests.Session()

    def fetch(url: str, etag: str | None = None) -> str:
        headers = {"If-None-Match": etag} if etag else {}
        response = session.get(url, headers=headers, timeout=30)
        return response.headers.get("etag", "")

    begin = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        etags = list(pool.map(fetch, urls))
    first = time.monotonic() - begin
    begin = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(fetch, urls, etags))
    return first, time.monotonic() - begin


def ingest_floor_cpu(paths: list[Path], folder: Path, fsync: bool = False) -> tuple[float, int]:
    """(CPU seconds, entries) of the least any ingest of these documents does, on one core: parse
    (as feedparser_cpu_per_entry), sanitize each entry's HTML with nh3, write it to a file of its own
    (temporary file and rename; `fsync`: on disk before the rename, as a merge that loses no entry
    must) and insert one row into an in-memory SQLite table."""
    documents = [path.read_bytes() for path in paths]
    folder.mkdir(parents=True, exist_ok=True)
    index = sqlite3.connect(":memory:")
    index.execute("CREATE TABLE posts (path TEXT PRIMARY KEY, title TEXT, body TEXT)")
    entries = 0
    begin = time.process_time()
    for document in documents:
        for entry in feedparser.parse(document, sanitize_html=False, resolve_relative_uris=False).entries:
            content = entry.get("content")
            body = nh3.clean(content[0].value if content else entry.get("summary", ""))
            path = folder / f"{entries}.md"
            write_atomically(path, body, fsync=fsync)
            index.execute("INSERT INTO posts VALUES (?, ?, ?)", (path.name, entry.get("title", ""), body))
            entries += 1
    cpu = time.process_time() - begin
    shutil.rmtree(folder, ignore_errors=True)
    return cpu, entries


def _in_feed(url: str, title: str) -> bool:
    return title.encode() in get(url)[2]


def feedparser_cpu_per_entry(paths: list[Path]) -> float:
    """feedparser's CPU per entry over these documents, doing only the parse any ingest needs (its
    own sanitizing and relative-URL passes off: feedhub does both its own way)."""
    documents = [path.read_bytes() for path in paths]
    begin = time.process_time()
    entries = sum(
        len(feedparser.parse(document, sanitize_html=False, resolve_relative_uris=False).entries)
        for document in documents
    )
    return (time.process_time() - begin) / max(entries, 1) * 1000


def render_table(rows: list[Row]) -> str:
    header = "| metric | posts | feedhub | baseline | baseline value | ratio | target | met |"
    lines = [header, "| --- | --- | ---: | --- | ---: | ---: | --- | --- |"]
    for row in rows:
        met = "" if row.met is None else ("yes" if row.met else "**no**")
        lines.append(
            f"| {row.metric} | {row.size} | {fmt(row.value, row.unit)} | {row.baseline_name} | "
            f"{fmt(row.baseline, row.unit) if row.baseline is not None else '—'} | {row.ratio} | "
            f"{row.target} | {met} |"
        )
    return "\n".join(lines)


def write_report(
    args: argparse.Namespace, table: str, unit: float, marker: str = "results", heading: str = "Results"
) -> None:
    cpu = re.search(r"Model name:\s+(.+)", subprocess.run(["lscpu"], capture_output=True, text=True).stdout)
    memory = re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO)
    command = ("bash bench/run " if marker == "results" else f"python -m bench.{marker} ") + " ".join(
        sys.argv[1:]
    )
    machine = (
        f"{cpu.group(1).strip() if cpu else platform.processor()}, {os.cpu_count()} cores, "
        f"{int(memory.group(1)) // 1024 // 1024 if memory else '?'} GiB; {platform.platform()}; "
        f"Python {platform.python_version()}"
    )
    results = (
        f"## {heading}\n\nRun on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with `{command.strip()}` "
        f"(feedhub {__version__}, commit {commit.stdout.strip()}).\n\n"
        f"Machine: {machine}. CPU calibration job: {unit * 1000:.1f} ms.\n\n{table}\n"
    )
    path = args.output
    text = path.read_text("utf-8") if path.exists() else "# Performance\n"
    start, end = f"<!-- {marker} -->", f"<!-- /{marker} -->"
    if start not in text:
        text += f"\n{start}\n{end}\n"
    before = text.split(start)[0]
    after = text.split(end)[1] if end in text else ""
    text = f"{before}{start}\n{results}{end}{after}"
    path.write_text(text, "utf-8")
    print(f"written to {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__)
    parser.add_argument("--sizes", default="1000,10000,100000", help="store sizes (posts), comma-separated")
    parser.add_argument(
        "--duration", type=int, default=4, help="seconds of each wrk run (the median of 5 counts)"
    )
    parser.add_argument("--jekyll", action="store_true", help="also time Jekyll + jekyll-feed (installs it)")
    parser.add_argument(
        "--jekyll-budget", type=float, default=900, help="seconds before a Jekyll build is skipped"
    )
    parser.add_argument("--feeds", type=int, default=1000, help="upstream feeds for the ingest cycle")
    parser.add_argument("--entries", type=int, default=50, help="entries per upstream feed")
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/feedhub-bench"))
    parser.add_argument(
        "--output", type=Path, default=REPO / "docs" / "performance.md", help="'' to not write it"
    )
    args = parser.parse_args(argv)
    args.sizes = sorted(int(size) for size in args.sizes.split(","))
    if str(args.output) in ("", "."):
        args.output = None
    print(
        f"stores: {', '.join(f'{s:,} posts / {category_count(s):,} categories' for s in args.sizes)}",
        flush=True,
    )
    Bench(args).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
