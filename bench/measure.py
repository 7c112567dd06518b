"""Measuring tools: servers as processes, wrk, timings, memory, and a CPU calibration."""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        connection.request(
            "GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers or {}
        )
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def wait_until(condition: Callable[[], object], timeout: float, interval: float = 0.01) -> float | None:
    """Seconds until condition() held, or None after timeout."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if condition():
                return time.monotonic() - start
        except OSError:
            pass
        time.sleep(interval)
    return None


def calibrate() -> float:
    """Seconds for a fixed CPU job on this machine now: the unit CPU-bound figures are compared to."""
    block = bytes(range(256)) * 4096

    def job() -> None:
        digest = hashlib.sha256()
        for _ in range(64):
            digest.update(block)
        sorted(str(i) for i in range(100_000))

    timings = []
    for _ in range(5):
        start = time.perf_counter()
        job()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


@dataclass
class Process:
    popen: subprocess.Popen
    url: str
    log: Path

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()

    def worker_pids(self) -> list[int]:
        """The processes this one forked (gunicorn's workers, the poller)."""
        children = Path(f"/proc/{self.popen.pid}/task/{self.popen.pid}/children")
        return [int(pid) for pid in children.read_text().split()] if children.exists() else []


def start(
    command: list[str], ready_path: str, log: Path, env: dict[str, str] | None = None
) -> tuple[Process, float]:
    """Start a server; return it with the seconds until `ready_path` answered 200."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    full = [arg.replace("{port}", str(port)) for arg in command]
    with open(log, "ab") as output:
        begin = time.monotonic()
        popen = subprocess.Popen(
            full, stdout=output, stderr=output, env={**os.environ, **(env or {})}, cwd=REPO
        )
    process = Process(popen, url, log)
    ready = wait_until(
        lambda: popen.poll() is None and get(url + ready_path)[0] == 200, timeout=900, interval=0.005
    )
    if ready is None:
        process.stop()
        raise RuntimeError(f"{' '.join(full)} did not answer; see {log}")
    return process, time.monotonic() - begin


def feedhub_serve(
    config: Path, log: Path, ready_path: str = "/healthz", **options: object
) -> tuple[Process, float]:
    command = [sys.executable, "-m", "feedhub", "serve", "--config", str(config), "--port", "{port}"]
    command += ["--no-access-log", "--no-scheduler", "--log-level", "WARNING"]
    for name, value in options.items():
        command += [f"--{name}", str(value)]
    return start(command, ready_path, log)


def bare_app(body: Path, content_type: str, log: Path, workers: int, threads: int) -> tuple[Process, float]:
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    command = [gunicorn, "--bind", "127.0.0.1:{port}", "--workers", str(workers), "--threads", str(threads)]
    command += [
        "--worker-class",
        "gthread" if threads > 1 else "sync",
        "--no-control-socket",
        "bench.bare:app",
    ]
    env = {"BENCH_BODY": str(body), "BENCH_CONTENT_TYPE": content_type}
    return start(command, "/small", log, env)


@dataclass(frozen=True)
class Load:
    requests_per_second: float
    p99_ms: float
    non_2xx: int


def wrk(
    url: str, connections: int, seconds: int, headers: dict[str, str] | None = None, repeats: int = 5
) -> Load:
    """The median of several short wrk runs.

    gunicorn's workers race to accept connections, so now and then one worker gets them
    all and a run measures one core instead of two; one run in five is no verdict.
    """
    runs = sorted((_wrk_once(url, connections, seconds, headers) for _ in range(repeats)), key=_rps)
    return runs[len(runs) // 2]


def _rps(load: Load) -> float:
    return load.requests_per_second


def _wrk_once(url: str, connections: int, seconds: int, headers: dict[str, str] | None) -> Load:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    command = [
        "wrk",
        "--latency",
        "-t",
        str(min(2, connections)),
        "-c",
        str(connections),
        "-d",
        f"{seconds}s",
    ]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    match = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", output)
    p99 = float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    return Load(rps, p99, int(non_2xx.group(1)) if non_2xx else 0)


def peak_rss_mb(pid: int) -> float:
    """The highest resident memory the process has had (VmHWM), in MB."""
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", text).group(1)) / 1024


def timed_run(command: list[str], log: Path, timeout: float | None = None, env: dict[str, str] | None = None):
    """Run a command under GNU time: (wall seconds, CPU seconds, peak RSS MB), or None past the timeout."""
    stats = log.with_suffix(".time")
    full = ["/usr/bin/time", "-o", str(stats), "-f", "%e %U %S %M", *command]
    with open(log, "ab") as output:
        popen = subprocess.Popen(
            full,
            stdout=output,
            stderr=output,
            cwd=REPO,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        try:
            code = popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(popen.pid, signal.SIGKILL)  # the whole group: time and what it runs
            popen.wait()
            return None
    if code != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({code}); see {log}")
    wall, user, system, rss_kb = stats.read_text().split()[-4:]
    return float(wall), float(user) + float(system), int(rss_kb) / 1024
