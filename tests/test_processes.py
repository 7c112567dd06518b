from __future__ import annotations

import re
import subprocess
import sys

from tests.helpers import REPO

POOL_THAT_LOGS = """
import logging
from feedhub.log_format import configure_logging
from feedhub.processes import process_pool
configure_logging("WARNING")
log = logging.getLogger("feedhub.pooled")
with process_pool(1, "feedhub.processes") as pool:
    pool.submit(log.warning, "shown %s", "here").result()
    pool.submit(log.info, "not shown").result()
"""


def test_a_pool_process_logs_as_its_owner_does() -> None:
    done = subprocess.run(
        [sys.executable, "-c", POOL_THAT_LOGS], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert done.returncode == 0, done.stderr
    assert re.search(r"^\[[^]]+\] \[\d+\] \[WARNING\] feedhub\.pooled: shown here$", done.stderr, re.M)
    assert "not shown" not in done.stderr
