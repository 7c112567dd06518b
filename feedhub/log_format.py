"""How every feedhub process logs: one line per event on stderr, in gunicorn's format.

Its own module so the web app (feedhub.wsgi) sets logging up without importing the CLI and,
through it, the aggregator.
"""

from __future__ import annotations

import logging
import sys


def configure_logging(level: str = "INFO") -> None:
    """One line per event on stderr, in gunicorn's format so the two logs read as one."""
    logging.basicConfig(
        level=getattr(logging, level),
        format="[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S %z",
        stream=sys.stderr,
    )
    # APScheduler logs every run of every job; feedhub logs one line per poll instead.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    # watchfiles logs each batch of changes, in every web worker; feedhub logs what a sync changed, once.
    logging.getLogger("watchfiles").setLevel(logging.WARNING)
