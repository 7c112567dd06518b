"""Measuring tools: servers as processes, wrk, timings, memory, and a CPU calibration."""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import http.client
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from tests.postgres import free_port

REPO = Path(__file__).resolve().parents[1]


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=60)
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
    popen: subprocess.Popen[bytes]
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


def settled() -> None:
    """Have the kernel write back what earlier steps left dirty before a timed step begins (an
    export leaves gigabytes, a removed one a journal of deletions): else that writeback may run
    during the step, and its row would count another step's I/O."""
    os.sync()


def start(
    command: list[str], ready_path: str, log: Path, env: dict[str, str] | None = None
) -> tuple[Process, float]:
    """Start a server; return it with the seconds until `ready_path` answered 200."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    full = [arg.replace("{port}", str(port)) for arg in command]
    settled()
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
    rps = float(found(r"Requests/sec:\s+([\d.]+)", output).group(1))
    match = found(r"99%\s+([\d.]+)(us|ms|s)\b", output)
    p99 = float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    return Load(rps, p99, int(non_2xx.group(1)) if non_2xx else 0)


def peak_rss_mb(pid: int) -> float:
    """The highest resident memory the process has had (VmHWM), in MB."""
    text = Path(f"/proc/{pid}/status").read_text()
    return int(found(r"VmHWM:\s+(\d+) kB", text).group(1)) / 1024


def found(pattern: str, text: str) -> re.Match[str]:
    """The pattern's first match in a tool's output, which must have it."""
    match = re.search(pattern, text)
    if match is None:
        raise RuntimeError(f"no {pattern!r} in {text[:500]!r}")
    return match


def timed_run(
    command: list[str], log: Path, timeout: float | None = None, env: dict[str, str] | None = None
) -> tuple[float, float, float] | None:
    """Run a command: (wall seconds, CPU seconds, peak memory MB) of it and of every process it
    started, or None past the timeout. Processes it leaves behind (a parsing pool's forkserver
    outlives the poller that started it) are adopted here and waited for, so their CPU counts:
    GNU time counts only what its child waits for. Memory: the highest sum of the processes'
    proportional set sizes (shared pages split among their sharers), sampled every 0.1 s."""
    _adopt_orphans()
    settled()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    begin = time.monotonic()
    with open(log, "ab") as output:
        popen = subprocess.Popen(
            command,
            stdout=output,
            stderr=output,
            cwd=REPO,
            env={**os.environ, **(env or {})},
            start_new_session=True,  # its processes are the session it leads
        )
        peak = _SessionMemory(popen.pid)
        try:
            code = popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(popen.pid, signal.SIGKILL)
            popen.wait()
            return None
        finally:
            _wait_for_session(popen.pid)
            peak.stop()
    wall = time.monotonic() - begin
    if code != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({code}); see {log}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu, peak.megabytes


def _adopt_orphans() -> None:
    """Become the parent of the processes our children leave behind (Linux's child subreaper)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


_PR_SET_CHILD_SUBREAPER = 36


def _session_processes(session: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == session:  # after ")": state, ppid, pgrp, session
                found.append(int(entry))
    return found


def _wait_for_session(session: int, timeout: float = 60) -> None:
    """Wait for the session's adopted processes to exit (reaped here, their CPU counted)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [pid for pid in _session_processes(session) if pid != session]
        if not alive:
            return
        for pid in alive:
            with contextlib.suppress(ChildProcessError):  # not ours: its own parent waits for it
                os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    raise RuntimeError(f"processes of session {session} still run {timeout:.0f} s after it ended")


class _SessionMemory:
    """The highest total PSS of a session's processes, sampled in a thread."""

    def __init__(self, session: int) -> None:
        self.session = session
        self.megabytes = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            total = 0
            for pid in _session_processes(self.session):
                try:
                    text = Path(f"/proc/{pid}/smaps_rollup").read_text()
                except OSError:
                    continue
                found = re.search(r"^Pss:\s+(\d+) kB", text, re.MULTILINE)
                total += int(found.group(1)) if found else 0
            self.megabytes = max(self.megabytes, total / 1024)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
