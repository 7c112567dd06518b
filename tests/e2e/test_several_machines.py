"""Several hosts sharing one PostgreSQL database and one posts folder, each host a set of real
processes with a data folder and a port of its own: web nodes, the indexer role, pollers, and a
database that restarts under them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.helpers import ServeProcess, SiteFolder, feedhub, request, wait_for
from tests.postgres import PostgresServer
from tests.upstream import Response, Upstream, item, rss


def node_config(site: SiteFolder, name: str, **settings: object) -> Path:
    """The config of host `name`: the shared database and posts folder, a data folder of its own."""
    site.write_config(**settings)
    document = yaml.safe_load(site.config_path.read_text("utf-8"))
    document["data_dir"] = f"data-{name}"
    path = site.root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), "utf-8")
    return path


def kill_host(config: Path) -> None:
    """Every process of a host dies at once (power lost): kill -9, no clean-up."""
    subprocess.run(["pkill", "-9", "-f", f"config {config}"], check=False)


@pytest.fixture
def shared(site: SiteFolder, postgres: PostgresServer) -> SiteFolder:
    site.database = postgres.new_database()
    return site


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[list[ServeProcess]]:
    started: list[ServeProcess] = []
    yield started
    for host in started:
        if host.process.poll() is None:
            host.stop()


def feed_titles(host: ServeProcess) -> list[str]:
    reply = host.get("/feed.json")
    return [entry["title"] for entry in json.loads(reply.body)["items"]] if reply.status == 200 else []


def test_every_node_serves_each_change_with_the_same_bytes_and_etag(
    shared: SiteFolder, hosts: list[ServeProcess], tmp_path: Path
) -> None:
    shared.add("2026-12-01-a.md", title="first", date="2026-12-01 10:00:00")
    for name in ("a", "b"):
        hosts.append(ServeProcess(node_config(shared, name), tmp_path / f"{name}.log", "--no-scheduler"))
    a, b = hosts
    assert feed_titles(a) == feed_titles(b) == ["first"]

    def post_b(title: str) -> None:
        shared.add("2026-12-02-b.md", title=title, date="2026-12-02 10:00:00")

    changes = [
        (lambda: post_b("second"), ["second", "first"]),
        (lambda: post_b("second, edited"), ["second, edited", "first"]),
        (lambda: (shared.posts / "2026-12-01-a.md").unlink(), ["second, edited"]),
    ]
    for change, expected in changes:
        change()
        assert wait_for(lambda e=expected: feed_titles(a) == e and feed_titles(b) == e, timeout=15), (
            feed_titles(a),
            feed_titles(b),
        )
        on_a, on_b = a.get("/feed.atom"), b.get("/feed.atom")
        assert on_a.body == on_b.body and on_a.headers["etag"] == on_b.headers["etag"]
        # a reader moving between nodes revalidates with the tag it has
        assert b.get("/feed.atom", {"If-None-Match": on_a.headers["etag"]}).status == 304


def test_when_the_indexing_host_dies_another_takes_over(
    shared: SiteFolder, hosts: list[ServeProcess], tmp_path: Path
) -> None:
    shared.add("2026-12-01-a.md", title="first", date="2026-12-01 10:00:00")
    first = node_config(shared, "a")
    hosts.append(ServeProcess(first, tmp_path / "a.log", "--no-scheduler", "--workers", "1"))
    hosts.append(
        ServeProcess(node_config(shared, "b"), tmp_path / "b.log", "--no-scheduler", "--workers", "1")
    )
    survivor = hosts[1]
    assert wait_for(lambda: "another process keeps the index; standing by" in survivor.log(), timeout=15)
    kill_host(first)
    shared.add("2026-12-02-b.md", title="after the crash", date="2026-12-02 10:00:00")
    assert wait_for(lambda: feed_titles(survivor) == ["after the crash", "first"], timeout=20), survivor.log()
    assert "this process keeps the index now" in survivor.log()


def poll_process(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        command = [sys.executable, "-m", "feedhub", "poll", "--config", str(config), "--jobs", "4"]
        return subprocess.Popen(command, stdout=out, stderr=out)


def merged_sources(log: Path) -> set[str]:
    return {
        line.split("source ", 1)[1].split(":", 1)[0]
        for line in log.read_text(errors="replace").splitlines()
        if " new, " in line and "source " in line
    }


def test_two_pollers_share_the_sources_and_each_entry_is_one_post(
    shared: SiteFolder, upstream: Upstream, tmp_path: Path
) -> None:
    count = 24
    for number in range(count):
        story = rss(item(f"story {number}", guid=f"g{number}", link=f"https://up.example/{number}"))
        # a second per feed: one poller alone would need several seconds, so both get a share
        upstream.script(f"/f{number}", Response(200, story, {"Content-Type": "application/rss+xml"}, delay=1))
    shared.write_sources(
        *({"id": f"s{n}", "url": upstream.url(f"/f{n}"), "interval": "10m"} for n in range(count))
    )
    logs = [tmp_path / "poller-a.log", tmp_path / "poller-b.log"]
    pollers = [poll_process(node_config(shared, name), log) for name, log in zip("ab", logs, strict=True)]
    try:
        assert wait_for(lambda: len(list(shared.posts.glob("*.md"))) == count, timeout=60)
        time.sleep(2)  # time for a second poll of anything, were a source polled twice
        assert all(len(upstream.hits(f"/f{n}")) == 1 for n in range(count))
        by_a, by_b = merged_sources(logs[0]), merged_sources(logs[1])
        assert by_a and by_b and not by_a & by_b and len(by_a | by_b) == count
        titles = sorted(
            path.read_text("utf-8").split("title: ", 1)[1].split("\n", 1)[0]
            for path in shared.posts.glob("*.md")
        )
        assert len(set(titles)) == count
    finally:
        for poller in pollers:
            poller.terminate()
            poller.wait(timeout=30)


def test_a_poller_killed_mid_poll_has_its_source_taken_over(
    shared: SiteFolder, upstream: Upstream, tmp_path: Path
) -> None:
    feed = rss(item("slow story", guid="slow", link="https://up.example/slow"))
    upstream.script(
        "/slow", Response(200, feed, {"Content-Type": "application/rss+xml"}, delay=120), Response(200, feed)
    )
    shared.write_sources({"id": "slow", "url": upstream.url("/slow"), "interval": "10m", "timeout": 300})
    first_config = node_config(shared, "a")
    first = poll_process(first_config, tmp_path / "poller-a.log")
    try:
        assert wait_for(lambda: upstream.hits("/slow"), timeout=30)  # a holds the lease, waiting on the feed
        second = poll_process(node_config(shared, "b"), tmp_path / "poller-b.log")
        try:
            kill_host(first_config)
            # b takes the source once a's lease runs out (it was renewed while a lived)
            assert wait_for(lambda: len(list(shared.posts.glob("*.md"))) == 1, timeout=90), (
                tmp_path / "poller-b.log"
            ).read_text()
            assert len(upstream.hits("/slow")) == 2
        finally:
            second.terminate()
            second.wait(timeout=30)
    finally:
        first.kill()
        first.wait()


def test_the_database_restarting_under_load_loses_nothing(
    shared: SiteFolder, postgres: PostgresServer, hosts: list[ServeProcess], tmp_path: Path
) -> None:
    shared.add("2026-12-01-a.md", title="first", date="2026-12-01 10:00:00")
    # One worker: what it built is its cache (another worker would have built nothing yet).
    hosts.append(
        ServeProcess(node_config(shared, "a"), tmp_path / "a.log", "--no-scheduler", "--workers", "1")
    )
    (host,) = hosts
    cached = host.get("/feed.atom")
    assert cached.status == 200
    postgres.stop(kill=True)
    try:
        # What was built is still served, revalidated too; health says what is wrong.
        assert host.get("/feed.atom").body == cached.body
        assert host.get("/feed.atom", {"If-None-Match": cached.headers["etag"]}).status == 304
        health = request(host.url + "/healthz")
        assert health.status == 503 and "cannot reach PostgreSQL" in json.loads(health.body)["database"]
        shared.add("2026-12-02-b.md", title="written while the database was down", date="2026-12-02 10:00:00")
        time.sleep(1)
    finally:
        postgres.start()
    # Reconnected by itself: the post written meanwhile arrives, and health recovers.
    assert wait_for(
        lambda: feed_titles(host) == ["written while the database was down", "first"], timeout=60
    ), host.log()
    assert wait_for(lambda: host.get("/healthz").status == 200, timeout=30)


def test_the_commands_work_the_same_with_the_shared_database(shared: SiteFolder, upstream: Upstream) -> None:
    shared.add("2026-12-01-a.md", title="first", date="2026-12-01 10:00:00")
    upstream.feed("/up", rss(item("from upstream", guid="u1", link="https://up.example/1")))
    shared.write_sources({"id": "up", "url": upstream.url("/up")})
    config = str(node_config(shared, "a"))
    checked = feedhub("check", "--config", config)
    assert checked.returncode == 0 and "1 post in 1 category" in checked.stdout, (
        checked.stdout + checked.stderr
    )
    once = feedhub("poll", "--once", "--config", config)
    assert once.returncode == 0 and "1 source polled: 1 new post, 0 failed" in once.stdout, once.stderr[
        -2000:
    ]
    other_host = str(node_config(shared, "b"))
    again = feedhub("poll", "--once", "--config", other_host)  # another host sees what the first merged
    assert again.returncode == 0 and "0 new posts" in again.stdout, again.stderr[-2000:]
    assert feedhub("enable", "up", "--config", other_host).returncode == 0
    assert feedhub("enable", "nope", "--config", other_host).returncode == 2
    assert "2 posts in 1 category" in feedhub("check", "--config", other_host).stdout
