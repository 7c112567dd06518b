"""Whole processes: `feedhub serve` under gunicorn, `feedhub check`, `gunicorn wsgi:app`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import feedparser
import pytest

from tests.helpers import REPO, ServeProcess, SiteFolder, post_text, request, wait_for
from tests.postgres import free_port


def newest_title(server: ServeProcess, path: str) -> str | None:
    entries = feedparser.parse(server.get(path).body).entries
    return entries[0].title if entries else None


def test_serve_follows_the_folder_in_every_worker(site: SiteFolder, tmp_path: Path) -> None:
    site.add("2022-01-01-first.md", title="第一篇", date="2022-01-01 09:00:00", categories="news")
    server = ServeProcess(site.write_config(), tmp_path / "serve.log", "--workers", "2")
    try:
        assert newest_title(server, "/feeds/news.atom") == "第一篇"
        assert "gunicorn" in server.get("/feed.atom").headers.get("server", "").lower()

        site.add("2022-01-02-second.md", title="第二篇", date="2022-01-02 09:00:00", categories="news")
        # Several requests, so both workers (each with its own watcher and cache) answer.
        assert wait_for(lambda: all(newest_title(server, "/feeds/news.atom") == "第二篇" for _ in range(6)))

        site.add(
            "2022-01-02-second.md",
            post_text(title="第二篇（更新）", date="2022-01-02 09:00:00", categories="news"),
        )
        assert wait_for(
            lambda: all(newest_title(server, "/feeds/news.rss") == "第二篇（更新）" for _ in range(6))
        )

        (site.posts / "2022-01-02-second.md").unlink()
        assert wait_for(lambda: all(newest_title(server, "/feeds/news.atom") == "第一篇" for _ in range(6)))
    finally:
        assert server.stop() == 0


def test_serve_restart_keeps_ids_and_etags(site: SiteFolder, tmp_path: Path) -> None:
    site.add("2022-01-01-first.md", title="第一篇", categories="news")
    config = site.write_config()
    server = ServeProcess(config, tmp_path / "one.log")
    reply = server.get("/feeds/news.atom")
    server.stop()
    restarted = ServeProcess(config, tmp_path / "two.log")
    try:
        again = restarted.get("/feeds/news.atom", {"If-None-Match": reply.headers["etag"]})
        assert again.status == 304
    finally:
        restarted.stop()


def test_check_reports_skipped_posts_and_exit_status(site: SiteFolder) -> None:
    site.add("2022-01-01-ok.md", title="ok")
    config = site.write_config()
    command = [sys.executable, "-m", "feedhub", "check", "--config", str(config)]
    clean = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "1 post in 1 category" in clean.stdout

    site.add("-202205262391921712.md", title="", date="'  +0800'")
    site.add("\n\nlate.md", text="\n\n" + post_text(title="late"))
    broken = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert broken.returncode == 1
    assert f"{site.posts.resolve() / '-202205262391921712.md'}: skipped: empty title" in broken.stdout
    assert "warning: blank lines before the front matter" in broken.stdout
    assert "1 skipped" in broken.stdout


def test_gunicorn_wsgi_app(site: SiteFolder, tmp_path: Path) -> None:
    site.add("2022-01-01-first.md", title="第一篇", date="2022-01-01 09:00:00", categories="news")
    port = free_port()
    env = {**os.environ, "FEEDHUB_CONFIG": str(site.write_config())}
    gunicorn = Path(sys.executable).with_name("gunicorn")
    if not gunicorn.exists():
        pytest.skip(f"no gunicorn next to {sys.executable}")
    with open(tmp_path / "gunicorn.log", "wb") as log:
        process = subprocess.Popen(
            [
                str(gunicorn),
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "--preload",
                "--no-control-socket",
                "wsgi:app",
            ],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=log,
        )
    try:

        def title() -> str | None:
            try:
                return (
                    feedparser.parse(request(f"http://127.0.0.1:{port}/feeds/news.atom").body)
                    .entries[0]
                    .title
                )
            except (OSError, IndexError):
                return None

        assert wait_for(lambda: title() == "第一篇", timeout=60), (tmp_path / "gunicorn.log").read_text()
        # With --preload the app is built before the fork; the watchers still run in the workers.
        site.add("2022-01-02-second.md", title="第二篇", date="2022-01-02 09:00:00", categories="news")
        assert wait_for(lambda: all(title() == "第二篇" for _ in range(6)))
    finally:
        process.terminate()
        process.wait(timeout=60)
