"""The one scheduler of a data folder: an exclusive lock on a file there, holding the holder's pid.

Kept apart from the scheduler itself so that what only asks (the web app's status and health,
`feedhub enable`) imports no APScheduler, feedparser or HTTP client.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path
from typing import TextIO

from feedhub.errors import FeedhubError

log = logging.getLogger(__name__)

LOCK_FILE = "scheduler.lock"


class AlreadyRunning(FeedhubError):
    def __init__(self, data_dir: Path, pid: int | None) -> None:
        holder = f"pid {pid}" if pid else "another process"
        super().__init__(f"{data_dir}: a scheduler is already running ({holder}); use --wait to wait for it")
        self.pid = pid


class SchedulerLock:
    """The one scheduler of a data folder: an exclusive lock on a file, with the holder's pid."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / LOCK_FILE
        self._file: TextIO | None = None

    def acquire(self, wait: bool) -> None:
        handle = open(self.path, "a+")  # noqa: SIM115 - held open for the scheduler's life
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = holder_pid(self.data_dir)
            if not wait:
                handle.close()
                raise AlreadyRunning(self.data_dir, pid) from None
            log.info("%s: the scheduler of pid %s polls; standing by to take over", self.data_dir, pid)
            fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing drops the lock
            self._file = None


def holder_pid(data_dir: Path) -> int | None:
    """The pid of the scheduler running on this data folder, or None when none is."""
    path = data_dir / LOCK_FILE
    try:
        with open(path) as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                text = handle.read().strip()
                return int(text) if text.isdigit() else 0
            return None
    except FileNotFoundError:
        return None
