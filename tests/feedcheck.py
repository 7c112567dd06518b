"""The external feed checkers of ../shared/tools/feedcheck, when this machine has them set up.

They are tools nobody on the project wrote (the W3C Feed Validation Service's code, the
JSON Feed schema). Tests using them skip, saying why, where they are not installed:
setting them up needs the network, and tests never touch it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import SHARED

FEEDCHECK = SHARED / "tools" / "feedcheck"
_HARNESS_PROBLEM = 2


def w3c_validate(document: Path, public_url: str) -> dict:
    """The validator's JSON report for a saved feed published at ``public_url``."""
    script = FEEDCHECK / "w3c_validate.py"
    if not script.is_file():
        pytest.skip(f"the W3C validator wrapper is not at {script} (../shared is absent)")
    result = subprocess.run(
        [sys.executable, str(script), "--json", str(document), "--base", public_url],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode == _HARNESS_PROBLEM:
        pytest.skip(f"the W3C validator is not set up here: {result.stderr.strip()[-300:]}")
    return json.loads(result.stdout)


def jsonfeed_validate(document: Path) -> subprocess.CompletedProcess:
    script = FEEDCHECK / "jsonfeed_validate.py"
    # feedcheck.conf puts it beside the real shared/ folder, wherever that is linked from
    prefix = Path(
        os.environ.get("FEEDCHECK_NPM_PREFIX", SHARED.resolve().parent / ".cache" / "feedcheck-npm")
    )
    if not (prefix / "node_modules" / "jsonfeed-schema").is_dir():
        # Installing it would need the npm registry; tests stay off the network.
        pytest.skip(
            f"the JSON Feed schema is not installed at {prefix} (run ../shared/tools/feedcheck/setup.sh)"
        )
    result = subprocess.run(
        [sys.executable, str(script), str(document)], capture_output=True, text=True, timeout=120
    )
    if result.returncode == _HARNESS_PROBLEM:
        pytest.skip(f"the JSON Feed checker cannot run here: {result.stdout.strip()[-300:]}")
    return result
