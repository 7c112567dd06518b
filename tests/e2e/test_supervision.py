"""`feedhub serve` keeps its processes: a dead scheduler comes back, SIGHUP reaches it, and
nothing keeps serving after the master is killed."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from feedhub.aggregator.lock import holder_pid
from feedhub.supervise import FIRST_RESTART_DELAY, MAX_RESTART_DELAY, ChildState, Supervised
from tests.helpers import ServeProcess, SiteFolder, feedhub, wait_for
from tests.upstream import Response, Upstream, item, rss


def serve_with_a_source(site: SiteFolder, upstream: Upstream, tmp_path: Path) -> ServeProcess:
    upstream.feed("/feed", rss(item("News", guid="u1", link="https://up.example/1")))
    site.write_sources({"id": "up", "url": upstream.url("/feed")})
    return ServeProcess(site.write_config(), tmp_path / "serve.log", "--workers", "1")


def test_a_killed_scheduler_is_started_again(site: SiteFolder, upstream: Upstream, tmp_path: Path) -> None:
    server = serve_with_a_source(site, upstream, tmp_path)
    try:
        data = site.root / "data"
        first = wait_for(lambda: holder_pid(data), timeout=30)
        assert first, server.log()
        os.kill(first, signal.SIGKILL)
        second = wait_for(lambda: (pid := holder_pid(data)) and pid != first and pid, timeout=30)
        assert second, server.log()
        assert re.search(rf"the scheduler \(pid {first}\) was killed by SIGKILL", server.log())
    finally:
        assert server.stop() == 0
    assert holder_pid(site.root / "data") is None  # stopping the server stops its scheduler


def test_sighup_to_serve_reloads_sources_in_the_scheduler(
    site: SiteFolder, upstream: Upstream, tmp_path: Path
) -> None:
    server = serve_with_a_source(site, upstream, tmp_path)
    try:
        assert wait_for(lambda: "1 source (1 enabled, 1 never polled)" in server.log(), timeout=30), (
            server.log()
        )
        # Same size and mtime: only SIGHUP, not the scheduler's own check of the file, can see it.
        path = site.root / "sources.yaml"
        before = path.stat()
        path.write_text(path.read_text().replace("id: up", "id: u2"), "utf-8")
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        time.sleep(3)
        assert server.log().count("1 source (1 enabled, 1 never polled)") == 1
        server.process.send_signal(signal.SIGHUP)
        assert wait_for(
            lambda: server.log().count("1 source (1 enabled, 1 never polled)") == 2, timeout=30
        ), server.log()
        assert server.get("/healthz").status == 200  # gunicorn's own HUP handling goes on
    finally:
        assert server.stop() == 0


def test_poll_once_asks_the_running_scheduler(site: SiteFolder, upstream: Upstream, tmp_path: Path) -> None:
    upstream.feed("/feed", rss(item("First", guid="u1")))
    upstream.script("/broken", *[Response(500)] * 5)
    site.write_sources(
        {"id": "up", "url": upstream.url("/feed")}, {"id": "broken", "url": upstream.url("/broken")}
    )
    server = ServeProcess(site.write_config(), tmp_path / "serve.log", "--workers", "1")
    config = ["--config", str(site.config_path)]
    try:
        assert wait_for(lambda: upstream.hits("/feed") and upstream.hits("/broken"), timeout=30), server.log()
        upstream.feed("/feed", rss(item("Second", guid="u2"), item("First", guid="u1")))
        asked = feedhub("poll", "--once", "--source", "up", *config, timeout=120)
        assert asked.returncode == 0, asked.stderr
        assert asked.stdout.splitlines() == [
            "up  new          1 new, 0 updated",
            "1 source polled: 1 new post, 0 failed",
        ]
        assert len(upstream.hits("/feed")) == 2  # polled by the scheduler, not by the command
        every = feedhub("poll", "--once", *config, timeout=120)
        assert every.returncode == 1 and "broken  error" in every.stdout, every.stdout
        assert every.stdout.splitlines()[-1] == "2 sources polled: 0 new posts, 1 failed"
        unknown = feedhub("poll", "--once", "--source", "nosuch", *config, timeout=60)
        assert unknown.returncode == 2 and "no source 'nosuch'" in unknown.stderr
        assert not list((site.root / "data" / "poll-requests").iterdir())  # nothing left behind
    finally:
        assert server.stop() == 0


def test_killing_the_master_stops_its_workers_and_scheduler(
    site: SiteFolder, upstream: Upstream, tmp_path: Path
) -> None:
    server = serve_with_a_source(site, upstream, tmp_path)
    data = site.root / "data"
    assert wait_for(lambda: holder_pid(data), timeout=30), server.log()
    # a kept-alive client and a half-sent request must not keep a worker serving
    address = ("127.0.0.1", int(server.url.rsplit(":", 1)[1]))
    idle = socket.create_connection(address)
    idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    server.process.kill()
    server.process.wait()

    def refused() -> bool:
        try:
            with socket.create_connection(address, timeout=1) as probe:
                probe.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                return not probe.recv(1)  # closed without an answer
        except TimeoutError:
            return False  # queued, unanswered: a worker still holds the socket
        except OSError:
            return True  # refused or reset: nothing listens any more

    killed = time.monotonic()
    assert wait_for(refused, timeout=15), server.log()
    assert time.monotonic() - killed < 15
    assert wait_for(lambda: holder_pid(data) is None, timeout=15), server.log()
    idle.close()


def test_a_port_in_use_is_one_line_and_starts_no_scheduler(site: SiteFolder, upstream: Upstream) -> None:
    site.write_sources({"id": "up", "url": upstream.url("/feed")})
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = [sys.executable, "-m", "feedhub", "serve", "--config", str(site.write_config())]
        result = subprocess.run([*command, "--port", str(port)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"feedhub: 127.0.0.1:{port} is already in use; choose another with --port"
    )
    assert "Traceback" not in result.stderr
    assert not (site.root / "data" / "scheduler.lock").exists()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def reap_when_dead(child: Supervised) -> None:
    deadline = time.monotonic() + 30
    while child.state is ChildState.RUNNING and time.monotonic() < deadline:
        child.reap()
        time.sleep(0.01)


def test_a_child_that_keeps_dying_is_restarted_later_each_time(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    child = Supervised("crasher", [sys.executable, "-c", "raise SystemExit(7)"], clock)
    child.ensure_running()
    delays = []
    for _ in range(8):
        assert child.state is ChildState.RUNNING
        reap_when_dead(child)
        died = clock.now
        child.ensure_running()  # too early: no start
        assert child.state is ChildState.WAITING
        while child.state is ChildState.WAITING:
            clock.now += 0.5
            child.ensure_running()
        delays.append(clock.now - died)
    assert delays[0] <= FIRST_RESTART_DELAY + 0.5
    assert delays == sorted(delays) and delays[-1] >= MAX_RESTART_DELAY / 2
    assert child.deaths == 8
    assert "the crasher" in caplog.text and "exited with status 7" in caplog.text
    child.stop()
    assert child.state is ChildState.STOPPED


def test_a_child_that_ran_long_is_restarted_quickly() -> None:
    clock = Clock()
    child = Supervised("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], clock)
    child.ensure_running()
    clock.now += 3600
    pid = child.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    reap_when_dead(child)
    clock.now += FIRST_RESTART_DELAY
    child.ensure_running()
    assert child.state is ChildState.RUNNING and child.pid != pid
    child.stop(timeout=5)
    assert child.state is ChildState.STOPPED
