"""Processes of their own for CPU-bound work (parsing feeds, reading posts, building an export):
threads of one Python process run Python one at a time, whatever the cores."""

from __future__ import annotations

import logging
import multiprocessing
import os
import select
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any

from feedhub.log_format import configure_logging

# Workers start from a server process that imported what they need once, not by forking the caller
# (its threads may hold locks a fork would copy held) nor from scratch each time.
_CONTEXT = multiprocessing.get_context("forkserver")


def processes_per_core() -> int:
    """A process per core this process may run on; none on one core (they would only add copying)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return cores if cores > 1 else 0


def process_pool(
    processes: int,
    preload: str,
    initializer: Callable[..., object] | None = None,
    initargs: tuple[Any, ...] = (),
    max_tasks_per_child: int | None = None,
) -> ProcessPoolExecutor:
    """A pool of `processes` workers forked from a server that imported `preload` (a module) first,
    when this process starts its server (the first pool it makes decides)."""
    _CONTEXT.set_forkserver_preload([preload])
    return ProcessPoolExecutor(
        processes,
        mp_context=_CONTEXT,
        initializer=_start_worker,
        initargs=(os.getpid(), logging.getLogger().getEffectiveLevel(), initializer, initargs),
        max_tasks_per_child=max_tasks_per_child,
    )


class Turns:
    """Turns a pool's processes take in order: turn n begins once turns 0 to n - 1 have ended,
    whichever processes took them. Made before the pool, and given to its processes as they start
    (an argument of the pool's initializer): the count and its lock live in shared memory."""

    def __init__(self) -> None:
        self._next = _CONTEXT.Value("q", 0, lock=False)  # the turn that may begin
        self._changed = _CONTEXT.Condition()

    @contextmanager
    def turn(self, number: int) -> Iterator[None]:
        """Wait for turn `number`, hold it inside, end it however the inside ends (the next turns
        would wait for ever behind one that failed)."""
        with self._changed:
            self._changed.wait_for(lambda: self._next.value == number)
        try:
            yield
        finally:
            with self._changed:
                self._next.value = number + 1
                self._changed.notify_all()


def _start_worker(
    owner: int, log_level: int, initializer: Callable[..., object] | None, initargs: tuple[Any, ...]
) -> None:
    """A worker outlives no owner: killed with -9, the owner never tells its workers to stop, and
    each would wait for work for ever (keeping the forkserver alive too, which holds a copy of the
    owner's end of its pipe for each). A thread ends the worker when the owner is gone.

    It logs as its owner does (feedhub's one format, the owner's level): forked from the
    forkserver, not from the owner, it has none of the owner's logging set up."""
    configure_logging(logging.getLevelName(log_level))
    threading.Thread(target=_end_with, args=(owner,), name="owner-watch", daemon=True).start()
    if initializer is not None:
        initializer(*initargs)


def _end_with(owner: int) -> None:
    try:
        descriptor = os.pidfd_open(owner)
    except ProcessLookupError:
        os._exit(0)
    except OSError:  # no pidfds (a kernel before 5.3): look every second
        while _alive(owner):
            time.sleep(1)
        os._exit(0)
    select.select([descriptor], [], [])  # readable once the owner has exited
    os._exit(0)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
