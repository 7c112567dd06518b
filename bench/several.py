"""Several machines: the PostgreSQL backend's figures beside SQLite's, measured in one run.

For each backend, on one store: the publish latency (a new post → its feed, through a
`feedhub serve` of two workers, one of which keeps the index while the other learns of
changes by notice), the cached feed against a bare Flask app serving the same bytes, and the
first poll cycle of 1,000 upstream feeds by one poller; with PostgreSQL, by two pollers too
(two hosts: two `feedhub poll` schedulers with their own data folders and a core each, sharing
the database and the posts folder). The table goes to docs/performance.md, under its own marker.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.corpus import category_count
from bench.main import Bench, Row, label, render_table, write_report
from bench.measure import REPO, calibrate, wait_until
from bench.upstream import start_nginx, stop, write_feeds, write_sources
from tests.postgres import start_server


def host_cores(pollers: int) -> list[set[int]]:
    """The cores each simulated host runs on: one of its own each (a host has CPUs of its own; left
    to share every core, two "hosts" would measure two processes on one machine, and a poller that
    parses on every core would leave the second nothing to add). PostgreSQL and nginx, other
    machines in a deployment, run on any core."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < pollers:
        raise RuntimeError(f"{pollers} hosts need {pollers} cores; this machine has {len(cores)}")
    return [{core} for core in cores[:pollers]]


def poll_cycle(bench: Bench, base: str, pollers: int, database: str | None) -> float:
    """Seconds until `pollers` schedulers (hosts, a core each) have merged every entry of every feed."""
    feeds, entries = bench.args.feeds, bench.args.entries
    target = bench.work / f"poll-{pollers}-{'pg' if database else 'sqlite'}"
    shutil.rmtree(target, ignore_errors=True)
    (target / "_posts").mkdir(parents=True)
    write_sources(target / "sources.yaml", base, feeds, entries)
    processes = []
    begin = time.monotonic()
    for host, cores in enumerate(host_cores(pollers)):
        config = target / f"host{host}.yaml"
        config.write_text(
            "title: bench\nbase_url: https://bench.example\nlanguage: zh-CN\nposts_dir: _posts\n"
            f"data_dir: data-{host}\nsources: sources.yaml\n"
            + (f"database: {database}\n" if database else ""),
            "utf-8",
        )
        command = [sys.executable, "-m", "feedhub", "poll", "--config", str(config), "--log-level", "WARNING"]
        on_its_cores = ["taskset", "--cpu-list", ",".join(map(str, sorted(cores))), *command]
        with open(bench.logs / f"poll-{pollers}-{host}.log", "ab") as log:
            processes.append(subprocess.Popen(on_its_cores, stdout=log, stderr=log, cwd=REPO))
    try:
        done = wait_until(
            lambda: sum(1 for _ in (target / "_posts").iterdir()) >= feeds * entries,
            timeout=1800,
            interval=0.5,
        )
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=60)
    if done is None:
        raise RuntimeError(f"{pollers} poller(s) did not merge every entry; see {bench.logs}")
    posts = sum(1 for path in (target / "_posts").iterdir() if path.suffix == ".md")
    if posts != feeds * entries:
        raise RuntimeError(f"{posts} posts for {feeds * entries} entries: an entry became two posts")
    return time.monotonic() - begin


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.several", description=__doc__)
    parser.add_argument("--size", type=int, default=100_000, help="posts in the store")
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--entries", type=int, default=50)
    parser.add_argument("--duration", type=int, default=4, help="seconds of each wrk run")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/feedhub-bench"))
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "performance.md")
    args = parser.parse_args(argv)
    print(f"store: {args.size:,} posts / {category_count(args.size):,} categories", flush=True)
    bench = Bench(args)
    unit = calibrate()
    server = start_server()
    upstream = bench.work / f"upstream-{args.feeds}x{args.entries}"
    if not (upstream / ".complete").exists():
        write_feeds(upstream, args.feeds, args.entries)
        (upstream / ".complete").write_text("1")
    nginx, base = start_nginx(upstream, bench.work / "nginx-upstream", probe="/feed0000.xml")
    try:
        cycles: dict[str, float] = {}
        for backend in ("sqlite", "postgresql"):
            bench.database = server.new_database() if backend == "postgresql" else None
            first = len(bench.rows)
            store = bench.store(args.size)
            shutil.rmtree(store / "data", ignore_errors=True)
            categories = bench.categories(store)
            latency = bench.publish_latency(args.size, store, categories[len(categories) // 4][0])
            bench.add(
                Row(
                    "publish latency (new post → its feed)",
                    label(args.size),
                    latency,
                    "s",
                    "—",
                    None,
                    "≤ 2 s",
                    latency <= 2,
                )
            )
            bench.load(store, categories[0][0], args.size)
            # A database of its own, as the two pollers': the store's would make the poller's first
            # sync of its empty folder delete the store's 100k posts inside the timed cycle.
            fresh = server.new_database() if backend == "postgresql" else None
            cycles[backend] = poll_cycle(bench, base, 1, fresh)
            one = f"first poll cycle, {args.feeds} feeds × {args.entries} entries, one poller"
            bench.add(Row(one, "—", cycles[backend], "s", "SQLite, one poller", cycles["sqlite"]))
            for row in bench.rows[first:]:
                row.metric = f"{backend}: {row.metric.strip()}"
        two = poll_cycle(bench, base, 2, server.new_database())
        metric = f"postgresql: first poll cycle, {args.feeds} feeds × {args.entries} entries, two pollers"
        met = two <= 0.6 * cycles["postgresql"]
        bench.add(
            Row(metric, "—", two, "s", "PostgreSQL, one poller", cycles["postgresql"], "≤ 0.6× one", met)
        )
    finally:
        stop(nginx)
        server.close()
    table = render_table(bench.rows)
    print("\n" + table)
    write_report(args, table, unit, marker="several", heading="Several machines (PostgreSQL beside SQLite)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
