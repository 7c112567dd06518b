"""Poll every enabled source at its interval: APScheduler 3, one job per source.

APScheduler has no coordination between processes, so exactly one scheduler runs per
data folder: it holds an exclusive lock on ``scheduler.lock`` there, whatever the
number of web workers. Editing sources.yaml takes effect without a restart (the file
is checked every few seconds, and SIGHUP reloads it at once).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime

from apscheduler.executors.pool import ThreadPoolExecutor as JobExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from feedhub.aggregator.poll_requests import ANSWER_TIMEOUT, PollRequest, answer, pending
from feedhub.aggregator.poller import Poller, PollReport
from feedhub.aggregator.sources import Source, load_sources
from feedhub.aggregator.state import PollResult
from feedhub.config import Config
from feedhub.errors import FeedhubError, StorageError
from feedhub.text import counted
from feedhub.websub.push_store import Pushed

log = logging.getLogger(__name__)

RELOAD_CHECK_SECONDS = 2.0
SIGNAL_CHECK_SECONDS = 0.2
# Sources due when the scheduler starts are spread out (50 ms each, 30 s at most), not all polled at once.
STARTUP_SPREAD_PER_SOURCE = 0.05
STARTUP_SPREAD_SECONDS = 30.0
UNRECORDED_RETRY_SECONDS = 30.0
STOP_WAIT_SECONDS = 50.0  # for the polls under way (their timeouts bound them): `feedhub serve` waits 60


def poll_once(poller: Poller, sources: list[Source], workers: int) -> list[PollReport]:
    """Poll these sources now, concurrently; the reports in the same order."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="poll") as pool:
        return list(pool.map(poller.poll, sources))


class PollScheduler:
    def __init__(self, config: Config, poller: Poller, workers: int, clock: Callable[[], float] = time.time):
        self.config = config
        self.poller = poller
        self.clock = clock
        self.sources: dict[str, Source] = {}
        self._stamp: tuple[int, int] | None = None
        self._loaded = threading.Event()  # sources.yaml has been read once
        # Signals received and not yet acted on. A handler only adds to this set: a handler that
        # set a threading.Event could deadlock on the lock the interrupted main thread holds
        # inside Event.wait (SIGTERM then never stopped the scheduler).
        self._signals: set[int] = set()
        # `feedhub poll --once` requests waiting for the next poll of a source
        self._waiting: dict[str, list[Future[PollReport]]] = {}
        self._waiting_lock = threading.Lock()
        # Set when the scheduler stops: polls still queued for a thread are not started (APScheduler's
        # pool runs its whole queue before it shuts down), and the ones under way are waited for here:
        # APScheduler 3's shutdown(wait=True) holds the job store lock while it waits, so a poll that
        # finished and rescheduled its job then waited for it for ever.
        self._stopping = False
        self._polls_running = 0
        self._polls_idle = threading.Condition()
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={"default": JobExecutor(workers)},
            # never two runs of one source at once; runs missed while busy or asleep become one
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )

    def run(self, stop: threading.Event, parent_pid: int | None = None) -> None:
        """Poll until ``stop`` is set, SIGTERM or SIGINT comes (in the main thread), or the parent
        process is gone; SIGHUP reloads sources.yaml at once."""
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(number, lambda received, _frame: self._signals.add(received))
        self.scheduler.start()
        try:
            self.reload()
            self._heartbeat()
            checked = time.monotonic()
            while not stop.wait(SIGNAL_CHECK_SECONDS):
                if received := self._signals & {signal.SIGTERM, signal.SIGINT}:
                    log.info("stopping on %s", signal.Signals(min(received)).name)
                    break
                if parent_pid is not None and os.getppid() != parent_pid:
                    log.info("the serving process is gone; stopping the scheduler")
                    break
                if signal.SIGHUP in self._signals:
                    self._signals.discard(signal.SIGHUP)
                    self.reload()
                for request in pending(self.config.data_dir):  # `feedhub poll --once` asks
                    threading.Thread(target=self._answer, args=(request,), name="poll-request").start()
                if time.monotonic() - checked >= RELOAD_CHECK_SECONDS:
                    checked = time.monotonic()
                    self._heartbeat()
                    if self._file_stamp() != self._stamp:
                        self.reload()
        finally:
            with self._polls_idle:
                self._stopping = True
            self.scheduler.shutdown(wait=False)
            with self._polls_idle:
                self._polls_idle.wait_for(lambda: not self._polls_running, timeout=STOP_WAIT_SECONDS)
            with contextlib.suppress(StorageError):
                self.poller.state.stopped(self.poller.owner)

    def _heartbeat(self) -> None:
        """A sign of life in the state, so health checks on every host see a scheduler runs."""
        try:
            self.poller.state.heartbeat(self.poller.owner, self.clock())
        except StorageError as exc:
            log.warning("cannot record that the scheduler runs: %s", exc)

    def reload(self) -> None:
        """Read sources.yaml again and make the jobs match it; a broken file changes nothing."""
        self._stamp = self._file_stamp()
        try:
            sources = {source.id: source for source in load_sources(self.config)}
        except FeedhubError as exc:
            log.error("%s; keeping the %s already loaded", exc, counted(len(self.sources), "source"))
            self._loaded.set()  # a broken file: the sources known (maybe none) are what they are
            return
        states = self.poller.state.all_sources()
        # Known before any job is added: a job due at once may fire before the loop below ends.
        previous, self.sources = self.sources, sources
        self._loaded.set()
        for source_id in set(previous) - set(sources):
            self._remove_job(source_id)
        now = self.clock()
        spread = min(STARTUP_SPREAD_SECONDS, STARTUP_SPREAD_PER_SOURCE * len(sources))
        for source in sources.values():
            if not source.enabled:
                self._remove_job(source.id)
                continue
            old = previous.get(source.id)
            state = states.get(source.id)
            due = state.next_poll if state and state.config_url == source.url and state.next_poll else now
            if due <= now:
                due = now + random.uniform(0, spread)
            job = self.scheduler.get_job(source.id)
            if job is None or old != source:
                self.scheduler.add_job(
                    self._poll,
                    IntervalTrigger(seconds=source.interval, jitter=min(source.interval // 10, 60)),
                    id=source.id,
                    args=[source.id],
                    next_run_time=_utc(due),
                    replace_existing=True,
                )
            elif job.next_run_time and due < job.next_run_time.timestamp():
                job.modify(next_run_time=_utc(due))  # `feedhub enable` asked for a poll soon
        never_polled = sum(source_id not in states for source_id in set(sources) - set(previous))
        enabled = sum(source.enabled for source in sources.values())
        log.info(
            "%s (%d enabled, %d never polled) from %s",
            counted(len(sources), "source"),
            enabled,
            never_polled,
            self.config.sources_path,
        )

    def _answer(self, request: PollRequest) -> None:
        """Poll the asked sources now, through their jobs (never two polls of one source at once)."""
        asked = request.sources or [source.id for source in self.sources.values() if source.enabled]
        waiting: list[Future[PollReport]] = []
        for source_id in asked:
            future: Future[PollReport] = Future()
            waiting.append(future)
            source = self.sources.get(source_id)
            job = self.scheduler.get_job(source_id)
            if source is None:
                future.set_result(
                    PollReport(source_id, PollResult.ERROR, "not among the scheduler's sources", None, None)
                )
            elif job is None:  # disabled: no job to run it, so no other poll of it either
                future.set_result(self.poller.poll(source))
            else:
                # Under the lock that _poll reschedules under: a poll finishing now cannot put the
                # job back to its interval after this asked for it to run now.
                with self._waiting_lock, contextlib.suppress(JobLookupError):
                    self._waiting.setdefault(source_id, []).append(future)
                    job.modify(next_run_time=_utc(self.clock()))
        reports = []
        for source_id, future in zip(asked, waiting, strict=True):
            try:
                reports.append(future.result(timeout=ANSWER_TIMEOUT))
            except FutureTimeout:
                reports.append(
                    PollReport(source_id, PollResult.ERROR, "the poll did not finish in time", None, None)
                )
        answer(self.config.data_dir, request, reports)

    def _poll(self, source_id: str) -> None:
        source = self.sources.get(source_id)
        with self._polls_idle:
            if source is None or self._stopping:
                return
            self._polls_running += 1
        try:
            self._poll_source(source)
        finally:
            with self._polls_idle:
                self._polls_running -= 1
                self._polls_idle.notify_all()

    def _poll_source(self, source: Source) -> None:
        source_id = source.id
        # The `feedhub poll --once` asks this poll answers: those made before it started. One made
        # while it fetches gets the next poll, started at once (the upstream may have changed since).
        with self._waiting_lock:
            waiters = self._waiting.pop(source_id, [])
        try:
            report = self.poller.poll(source, due_only=not waiters)
        except Exception as exc:
            # A bug must not kill the job: log it, try again at the next interval.
            log.exception("source %s: the poll failed unexpectedly", source_id)
            report = PollReport(source_id, PollResult.ERROR, f"unexpected error: {exc}", None, None)
        # Leased by another poller: ask again when its lease ends, or at the next poll it set; a poll
        # that could not even be recorded (the database away) is tried again soon, not an interval on.
        next_poll = (
            report.leased_until
            or (report.state and report.state.next_poll)
            or self.clock() + min(source.interval, UNRECORDED_RETRY_SECONDS)
        )
        with self._waiting_lock:
            if source_id in self._waiting:
                next_poll = self.clock()
            with contextlib.suppress(JobLookupError):  # removed by a reload while it ran
                self.scheduler.modify_job(source_id, next_run_time=_utc(next_poll))
        for waiter in waiters:
            waiter.set_result(report)

    def push(self, pushed: Pushed) -> bool:
        """Merge content a hub pushed for a source; False when it must wait (the source is being
        polled). Pushed content of a source no longer configured is dropped."""
        if not self._loaded.is_set():
            return False  # sources.yaml not read yet (the scheduler is starting): it waits
        source = self.sources.get(pushed.source)
        if source is None or not source.enabled:
            log.info("source %s: pushed content dropped: not an enabled source", pushed.source)
            return True
        return self.poller.push(source, pushed) is not None

    def push_stopped(self, source_id: str) -> None:
        """A hub no longer pushes this source: its next poll comes at its interval, not the long
        safety one set while it was pushed."""
        source = self.sources.get(source_id)
        job = self.scheduler.get_job(source_id)
        if source is None or job is None or job.next_run_time is None:
            return
        soon = self.clock() + source.interval
        if soon < job.next_run_time.timestamp():
            with self._waiting_lock, contextlib.suppress(JobLookupError):
                job.modify(next_run_time=_utc(soon))
            log.info("source %s: no longer pushed; polled at its interval again", source_id)

    def _remove_job(self, source_id: str) -> None:
        with contextlib.suppress(JobLookupError):
            self.scheduler.remove_job(source_id)

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            stat = self.config.sources_path.stat()
        except FileNotFoundError:
            return None
        return stat.st_mtime_ns, stat.st_size


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)
