"""Runs the WebSub work (the built-in hub's deliveries and pings, the subscriptions to upstream
hubs and what they push) in a thread of the scheduler's process, while this process leads it.

One process per data folder holds the scheduler, so with SQLite this one always leads; with
PostgreSQL every poller competes for the role (an advisory lock) and one holds it at a time:
when it dies, another takes over within LEAD_RETRY_SECONDS.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from feedhub.errors import StorageError
from feedhub.storage.base import Backend

log = logging.getLogger(__name__)

ROLE = "websub"
TICK_SECONDS = 0.2
LEAD_RETRY_SECONDS = 5.0
LEAD_CHECK_SECONDS = 2.0


class Worker(Protocol):
    def tick(self) -> None: ...

    def close(self) -> None: ...


class WebSubRunner:
    def __init__(self, backend: Backend, workers: list[Worker]) -> None:
        self.backend = backend
        self.workers = workers
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="websub", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        for worker in self.workers:
            worker.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                lead = self.backend.lead(ROLE)
            except StorageError as exc:
                log.warning("websub: %s", exc)
                lead = None
            if lead is None:  # another poller does it; stand by
                self._stop.wait(LEAD_RETRY_SECONDS)
                continue
            try:
                self._lead(lead.held)
            finally:
                lead.release()

    def _lead(self, still_leading: Callable[[], bool]) -> None:
        problem: str | None = None
        checked = time.monotonic()
        while not self._stop.wait(TICK_SECONDS):
            if time.monotonic() - checked >= LEAD_CHECK_SECONDS:
                checked = time.monotonic()
                if not still_leading():
                    log.warning("websub: lost the lead (the database connection dropped)")
                    return
            failure = None
            for worker in self.workers:
                try:
                    worker.tick()
                except StorageError as exc:
                    failure = str(exc)
                    if failure != problem:  # once per problem, not five times a second
                        log.warning("websub: %s", exc)
                except Exception:
                    log.exception("websub: unexpected error")
            problem = failure
