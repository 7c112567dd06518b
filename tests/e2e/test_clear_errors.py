"""Errors an operator meets at the command line: one line each, exit 2, never a traceback."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import ServeProcess, SiteFolder, feedhub
from tests.postgres import free_port


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """The folder made unwritable for real, even to root: chattr +i (else, not as root, chmod)."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    made = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot make {folder} immutable here (chattr: {made.stderr.strip()})")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


@pytest.mark.parametrize("command", [["check"], ["poll", "--once"], ["build", "OUT"], ["serve"]])
@pytest.mark.parametrize("key", ["data_dir", "posts_dir"])
def test_an_unwritable_folder_is_one_line(
    site: SiteFolder, tmp_path: Path, command: list[str], key: str
) -> None:
    site.write_sources({"id": "up", "url": "https://up.example/rss"})  # the aggregator writes posts
    config = site.write_config()
    folder = site.posts if key == "posts_dir" else site.root / "data"
    folder.mkdir(exist_ok=True)
    arguments = [str(tmp_path / "out") if part == "OUT" else part for part in command]
    if command == ["serve"]:
        arguments += ["--port", str(free_port())]
    with read_only(folder):
        result = feedhub(*arguments, "--config", str(config), timeout=60)
    assert result.returncode == 2, result.stderr
    assert (
        result.stderr.strip().splitlines()
        == [f"feedhub: {config}: {key}: cannot write to folder {folder.resolve()}: Operation not permitted"]
        or "Permission denied" in result.stderr
    )
    assert not (site.root / "data" / "scheduler.lock").exists() or key == "posts_dir"


def test_a_read_only_posts_folder_is_fine_without_sources(site: SiteFolder) -> None:
    site.add("2022-01-01-a.md", title="A", date="2022-01-01 09:00:00")
    with read_only(site.posts):
        result = feedhub("check", "--config", str(site.write_config()), timeout=60)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["serve", "--port", "99999"],
            "feedhub serve: argument --port: must be between 1 and 65535, got 99999",
        ),
        (["serve", "--workers", "0"], "feedhub serve: argument --workers: must be between 1 and 256, got 0"),
        (
            ["serve", "--threads", "-1"],
            "feedhub serve: argument --threads: must be between 1 and 1024, got -1",
        ),
        (["poll", "--jobs", "many"], "feedhub poll: argument --jobs: must be a whole number, got 'many'"),
        (["build", "FILE"], "feedhub build: argument OUTDIR: FILE is a file, not a folder"),
    ],
)
def test_invalid_arguments_are_one_line(tmp_path: Path, arguments: list[str], message: str) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    arguments = [str(a_file) if part == "FILE" else part for part in arguments]
    result = feedhub(*arguments, timeout=60)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(message.replace("FILE", str(a_file)))


def test_a_loopback_base_url_on_another_port_is_warned_about(site: SiteFolder, tmp_path: Path) -> None:
    config = site.write_config(base_url="http://127.0.0.1:8000")
    server = ServeProcess(config, tmp_path / "serve.log", "--no-scheduler")
    try:
        port = server.url.rsplit(":", 1)[1]
        warning = "base_url http://127.0.0.1:8000 is a loopback address on port 8000, but this server"
        assert f"{warning} listens on {port}" in server.log()
    finally:
        assert server.stop() == 0
