"""Long commands show progress on a terminal, and only their summary line elsewhere."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from tests.helpers import SiteFolder, feedhub, post_text


def on_a_terminal(*arguments: str) -> tuple[int, str]:
    """`feedhub ARGUMENTS` with a pseudo-terminal for stdout and stderr, as an operator runs it."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "feedhub", *arguments], stdout=terminal, stderr=terminal, close_fds=True
    )
    os.close(terminal)
    output = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the other end is closed
            break
        if not chunk:
            break
        output += chunk
    os.close(controller)
    return process.wait(timeout=120), output.decode("utf-8", "replace")


@pytest.fixture
def big_site(site: SiteFolder) -> SiteFolder:
    for number in range(1500):
        (site.posts / f"2022-01-01-p{number}.md").write_text(
            post_text(title=f"Post {number}", categories=f"c{number % 7}"), "utf-8"
        )
    return site


@pytest.mark.parametrize("command", ["check", "build"])
def test_progress_on_a_terminal(big_site: SiteFolder, tmp_path: Path, command: str) -> None:
    arguments = [command, "--config", str(big_site.write_config())]
    if command == "build":
        arguments.append(str(tmp_path / "out"))
    status, output = on_a_terminal(*arguments)
    assert status == 0, output
    assert "reading posts: 0 posts [00:00, ? posts/s]" in output  # tqdm's count and rate
    if command == "build":
        assert "exporting" in output and "files/s" in output


@pytest.mark.parametrize("command", ["check", "build"])
def test_one_summary_line_off_a_terminal(big_site: SiteFolder, tmp_path: Path, command: str) -> None:
    arguments = [command, "--config", str(big_site.write_config())]
    if command == "build":
        arguments.append(str(tmp_path / "out"))
    result = feedhub(*arguments)
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stdout + result.stderr
    assert len(result.stdout.splitlines()) == 1 and result.stderr == ""
