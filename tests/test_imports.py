"""The web app imports no aggregator library: workers stay small, and serving cannot break on them."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.helpers import SiteFolder

AGGREGATOR_LIBRARIES = ("apscheduler", "feedparser", "requests")


def test_the_web_app_imports_no_aggregator_library(site: SiteFolder) -> None:
    script = (
        "import sys, feedhub.wsgi; "
        f"print(sorted(name for name in {AGGREGATOR_LIBRARIES!r} if name in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "FEEDHUB_CONFIG": str(site.write_config())},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
