"""`gunicorn feedhub.wsgi:app` as an operator runs it: from any folder, from a real install."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import REPO, SiteFolder, request, wait_for
from tests.postgres import free_port

GUNICORN = Path(sys.executable).with_name("gunicorn")


def start_gunicorn(
    config_path: Path, log_path: Path, cwd: Path, *options: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    if not GUNICORN.exists():
        pytest.skip(f"no gunicorn next to {sys.executable}")
    port = free_port()
    command = [str(GUNICORN), "--bind", f"127.0.0.1:{port}", "--workers", "2", "--no-control-socket"]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [*command, *options, "feedhub.wsgi:app"],
            cwd=cwd,
            env={**os.environ, "FEEDHUB_CONFIG": str(config_path), **(env or {})},
            stdout=log,
            stderr=log,
        )
    return process, f"http://127.0.0.1:{port}"


def serves(url: str) -> bool:
    try:
        return request(url + "/feeds/news.atom").status == 200
    except OSError:
        return False


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()


def test_the_packaged_app_serves_from_any_folder(site: SiteFolder, tmp_path: Path) -> None:
    site.add("2022-01-01-first.md", title="First", date="2022-01-01 09:00:00", categories="news")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    process, url = start_gunicorn(site.write_config(), tmp_path / "gunicorn.log", elsewhere)
    try:
        assert wait_for(lambda: serves(url), timeout=60), (tmp_path / "gunicorn.log").read_text()
    finally:
        stop(process)


def test_the_packaged_app_serves_from_a_non_editable_install(site: SiteFolder, tmp_path: Path) -> None:
    """A wheel built from the tree and installed into a folder: no source tree on sys.path (the
    templates must be in the package, not found beside it)."""
    site.add("2022-01-01-first.md", title="First", date="2022-01-01 09:00:00", categories="news")
    target, source = tmp_path / "installed", tmp_path / "source"
    # A copy: pip builds in the folder it is given, and tests never write into the tree.
    shutil.copytree(REPO / "feedhub", source / "feedhub", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    log = tmp_path / "gunicorn.log"
    # -I: neither the current folder nor the editable install of the tree is on sys.path.
    env = {"PYTHONPATH": str(target), "PYTHONNOUSERSITE": "1"}
    if not GUNICORN.exists():
        pytest.skip(f"no gunicorn next to {sys.executable}")
    port = free_port()
    script = (
        "import sys; sys.path = [p for p in sys.path if 'feedhub' not in p and '__editable__' not in p];"
        "sys.meta_path = [f for f in sys.meta_path if 'editable' not in type(f).__module__.lower()];"
        "from gunicorn.app.wsgiapp import run; sys.argv = ['gunicorn', '--bind', "
        f"'127.0.0.1:{port}', '--no-control-socket', 'feedhub.wsgi:app']; run()"
    )
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", script],
            cwd=tmp_path,
            env={**os.environ, "FEEDHUB_CONFIG": str(site.write_config()), **env},
            stdout=out,
            stderr=out,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        assert wait_for(lambda: serves(url), timeout=60), log.read_text()
        checked = subprocess.run(
            [
                sys.executable,
                "-c",
                script.split("from gunicorn")[0] + "import feedhub; print(feedhub.__file__)",
            ],
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            cwd=tmp_path,
            timeout=60,
        )
        assert checked.stdout.startswith(str(target)), checked
    finally:
        stop(process)


def test_an_invalid_config_stops_gunicorn_with_the_message_serve_prints(
    site: SiteFolder, tmp_path: Path
) -> None:
    config = site.write_config(cache_max_age="soon")
    check = subprocess.run(
        [sys.executable, "-m", "feedhub", "check", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    message = check.stderr.strip()
    assert check.returncode == 2 and "cache_max_age" in message
    process, _ = start_gunicorn(config, tmp_path / "gunicorn.log", tmp_path)
    started = time.monotonic()
    try:
        code = process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        stop(process)
        log = (tmp_path / "gunicorn.log").read_text()
        raise AssertionError(f"gunicorn kept starting workers:\n{log}") from None
    log = (tmp_path / "gunicorn.log").read_text()
    assert code != 0
    assert time.monotonic() - started < 30
    assert log.count("Booting worker") <= 2, log
    assert message in log.splitlines(), log
    assert "Traceback" not in log
