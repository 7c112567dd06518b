"""Generated hostile feeds and posts (tests/fuzzing.py), run under a memory cap and a time bound."""

from __future__ import annotations

import os
import resource
import subprocess
import sys

from tests.helpers import REPO

MEMORY_CAP = 2 * 1024**3  # bytes of address space: an input that blows memory up fails, not the machine
TIME_BOUND = 900  # seconds for the whole run: an input that hangs fails


def test_hostile_feeds_and_posts_under_a_memory_cap() -> None:
    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))

    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/fuzzing.py"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=TIME_BOUND,
        preexec_fn=cap,
        env={**os.environ, "FEEDHUB_FUZZ_EXAMPLES": os.environ.get("FEEDHUB_FUZZ_EXAMPLES", "200")},
    )
    assert result.returncode == 0, result.stdout[-6_000:] + result.stderr[-3_000:]
