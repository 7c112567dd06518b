"""One child process kept running: started again when it dies, later each time it keeps dying.

`feedhub serve` keeps its scheduler this way. The parent's own loop drives it (gunicorn's
master calls ``reap`` when a child exits and ``ensure_running`` about once a second), so
no thread runs beside a process that forks.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from enum import Enum

log = logging.getLogger(__name__)

FIRST_RESTART_DELAY = 1.0
MAX_RESTART_DELAY = 60.0
# A child that ran this long before dying is not crash-looping: its next restart is quick again.
STABLE_SECONDS = 60.0
STOP_TIMEOUT = 60.0


class ChildState(Enum):
    RUNNING = "running"
    WAITING = "waiting to restart"
    STOPPED = "stopped"


class Supervised:
    def __init__(
        self, name: str, command: Sequence[str], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.name = name
        self.command = list(command)
        self.clock = clock
        self.deaths = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._started = 0.0
        self._delay = 0.0  # the wait before the last restart
        self._next_start = 0.0
        self._stopped = False

    @property
    def state(self) -> ChildState:
        if self._stopped:
            return ChildState.STOPPED
        return ChildState.RUNNING if self._process is not None else ChildState.WAITING

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def ensure_running(self) -> None:
        """Start the child if it is not running and its restart delay has passed."""
        if self._stopped or self._process is not None or self.clock() < self._next_start:
            return
        self._process = subprocess.Popen(self.command)
        self._started = self.clock()

    def reap(self) -> None:
        """Notice the child's death (call it on SIGCHLD, before anything waits for any child)."""
        process = self._process
        if process is None:
            return
        try:
            pid, status = os.waitpid(process.pid, os.WNOHANG)
        except ChildProcessError:  # reaped by a waitpid(-1) elsewhere: dead, how is lost
            pid, status = process.pid, None
        if pid == 0:
            return
        process.returncode = os.waitstatus_to_exitcode(status) if status is not None else -1
        self._process = None
        if self._stopped:
            return
        self.deaths += 1
        ran = self.clock() - self._started
        quick_again = self._delay and ran < STABLE_SECONDS
        self._delay = min(self._delay * 2, MAX_RESTART_DELAY) if quick_again else FIRST_RESTART_DELAY
        self._next_start = self.clock() + self._delay
        log.error(
            "the %s (pid %d) %s after %.0f s; starting it again in %.0f s",
            self.name,
            pid,
            _how_it_ended(status),
            ran,
            self._delay,
        )

    def send(self, number: signal.Signals) -> None:
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError):
                self._process.send_signal(number)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop for good: SIGTERM, then SIGKILL after ``timeout`` seconds."""
        self._stopped = True
        process = self._process
        if process is None:
            return
        self.send(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self._process is not None and time.monotonic() < deadline:
            time.sleep(0.05)
            self.reap()
        if self._process is not None:
            process.kill()
            with contextlib.suppress(ChildProcessError):
                os.waitpid(process.pid, 0)
            process.returncode, self._process = -signal.SIGKILL, None


def _how_it_ended(status: int | None) -> str:
    if status is None:
        return "died"
    if os.WIFSIGNALED(status):
        return f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"
