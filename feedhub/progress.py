"""Progress of long work on a terminal (tqdm): a bar with the count and the rate.

Off a terminal (a log, a pipe, CI) nothing is drawn: the command's one summary line says it all.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator

from tqdm import tqdm

Advance = Callable[[int], object]  # called with how many more items are done


@contextlib.contextmanager
def progress(description: str, unit: str, total: int | None = None) -> Iterator[Advance]:
    if not sys.stderr.isatty():
        yield lambda _done: None
        return
    # A terminal that reports no size (a bare pseudo-terminal) would get no bar at all from tqdm.
    try:
        size = os.get_terminal_size(sys.stderr.fileno())
    except OSError:
        size = os.terminal_size((0, 0))
    width, height = (None, None) if size.columns and size.lines else (100, 24)
    with tqdm(
        total=total,
        desc=description,
        unit=f" {unit}",
        file=sys.stderr,
        mininterval=0.2,
        ncols=width,
        nrows=height,
        leave=False,
    ) as bar:
        yield bar.update
