"""The WSGI app for `gunicorn feedhub.wsgi:app`; the config is $FEEDHUB_CONFIG or config/feedhub.yaml.

An invalid config stops gunicorn instead of letting it boot and kill workers forever:
gunicorn's master halts when a worker exits with WORKER_BOOT_ERROR.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from feedhub.config import config_path, load_config
from feedhub.errors import FeedhubError
from feedhub.log_format import configure_logging
from feedhub.metrics import record_in_run_folder
from feedhub.web import create_app

WORKER_BOOT_ERROR = 3  # gunicorn.arbiter.Arbiter.WORKER_BOOT_ERROR


def _first_to_fail() -> bool:
    """Whether this is the first worker of its master to fail to boot.

    Only that one exits with WORKER_BOOT_ERROR: the master, while halting, raises again (with a
    traceback) for each further worker it reaps with that code.
    """
    marker = Path(tempfile.gettempdir()) / f"feedhub-boot-failed-{_master_identity()}"
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        return False
    except OSError:
        return True
    return True


def _master_identity() -> str:
    """The master's pid and start time: a pid alone comes back (a container's master is pid 1 after
    every restart), and a marker left by an earlier master would make every worker exit quietly."""
    master = os.getppid()
    try:
        # /proc/<pid>/stat: the fields after the command's ")" start at the 3rd; the 22nd is the start time
        started = Path(f"/proc/{master}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        started = "unknown"
    return f"{master}-{started}"


configure_logging()
try:
    config = load_config(config_path(None))
    record_in_run_folder(config.data_dir, owner_pid=os.getppid())  # the run of this gunicorn master
    app = create_app(config)
except FeedhubError as exc:
    if _first_to_fail():
        print(f"feedhub: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(WORKER_BOOT_ERROR) from None
    raise SystemExit(0) from None
