"""Processes of their own for CPU-bound work (parsing feeds, reading posts, building an export):
threads of one Python process run Python one at a time, whatever the cores."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

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
        initializer=initializer,
        initargs=initargs,
        max_tasks_per_child=max_tasks_per_child,
    )
