"""Test helpers: a site folder on disk, a real HTTP server on 127.0.0.1, a plain HTTP client."""

from __future__ import annotations

import http.client
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from flask import Flask
from werkzeug.serving import make_server

from feedhub.config import Config, load_config
from feedhub.index.model import Entry
from feedhub.index.versions import QueriedVersions
from feedhub.index.write import open_writer
from feedhub.site import open_site
from tests.postgres import free_port

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CORPUS_POSTS = SHARED / "corpus" / "finews" / "_posts"
SEEDS = SHARED / "seeds"
BASE_URL = "https://news.example.org"


def corpus_posts(into: Path | None = None) -> Path:
    """The finews posts copied into ``into`` (tests never write into ../shared, nor let a process
    they start write there); without ``into``, only whether the corpus is there (else a skip)."""
    if not CORPUS_POSTS.is_dir():
        pytest.skip(f"the finews corpus is not at {CORPUS_POSTS} (../shared is absent)")
    if into is None:
        return CORPUS_POSTS
    copy = into / "finews-posts"
    shutil.copytree(CORPUS_POSTS, copy)
    return copy


def post_text(
    title: str = "A post",
    date: str | None = "2022-04-15 11:35:24 +0800",
    categories: str | list[str] | None = "news",
    tags: str | list[str] | None = None,
    body: str = "Some text.",
    **extra: object,
) -> str:
    """A Jekyll post as the finews generator wrote them (quoted title, unquoted scalars)."""
    lines = ["---", "layout: post", f"title: {json.dumps(title, ensure_ascii=False)}"]
    if date is not None:
        lines.append(f"date: {date}")
    for key, value in (("categories", categories), ("tags", tags), *extra.items()):
        if value is not None:
            dumped = yaml.safe_dump({key: value}, allow_unicode=True, default_flow_style=True).strip()
            lines.append(dumped[1:-1])
    return "\n".join([*lines, "---", body])


@dataclass
class SiteFolder:
    root: Path
    database: str | None = None  # a PostgreSQL URL (the `backend` fixture's choice); None: SQLite

    @property
    def posts(self) -> Path:
        return self.root / "_posts"

    @property
    def config_path(self) -> Path:
        return self.root / "feedhub.yaml"

    def write_config(self, **overrides: object) -> Path:
        settings: dict[str, object] = {
            "title": "Example News",
            "base_url": BASE_URL,
            "language": "en",
            "posts_dir": "_posts",
            "data_dir": "data",
        }
        if self.database:
            settings["database"] = self.database
        settings.update(overrides)
        self.config_path.write_text(yaml.safe_dump(settings, allow_unicode=True), encoding="utf-8")
        return self.config_path

    def config(self, **overrides: object) -> Config:
        self.write_config(**overrides)
        return load_config(self.config_path)

    def write_sources(self, *sources: dict[str, object]) -> Path:
        """sources.yaml beside feedhub.yaml; each source in category `news`, polled every minute."""
        document = {"sources": [{"category": "news", "interval": "1m", **source} for source in sources]}
        path = self.root / "sources.yaml"
        path.write_text(yaml.safe_dump(document, allow_unicode=True), "utf-8")
        return path

    def add(self, name: str, text: str | None = None, **fields: object) -> Path:
        path = self.posts / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(post_text(**fields) if text is None else text, encoding="utf-8")
        return path


# Modules whose tests concern storage run each test against both backends.
BOTH_BACKENDS = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)


class SiteIndex:
    """A site's index as the tests drive it: the write side, and the read side through Site."""

    def __init__(self, config: Config, clock: Callable[[], float] = time.time) -> None:
        self.writer = open_writer(config, clock)
        self.site = open_site(config)
        self.reader = self.site.index
        self.sync_all = self.writer.sync_all
        self.sync_paths = self.writer.sync_paths
        self.publish_due = self.writer.publish_due
        self.next_due = self.writer.next_due
        self.feed_size = self.reader.feed_size
        self.problems = self.reader.problems
        self.counts = self.reader.counts
        self.category_tag = self.reader.category_tag
        self.categories = self.reader.categories
        self.published_posts = self.reader.published_posts

    def entries(self, slug: str | None, offset: int, limit: int) -> list[Entry]:
        return self.site.rendered.entries(self.reader.posts(slug, None, offset + limit)[offset:])

    def entry_at(self, permalink: str) -> Entry | None:
        stored = self.reader.post_at(permalink)
        return self.site.rendered.entries([stored])[0] if stored else None

    def version(self, key: str) -> int:
        """The reader's version of a feed, once it has caught up with the database (with PostgreSQL
        it learns of changes by notice, a moment after the commit)."""
        stored = QueriedVersions(self.reader.backend).version(key)
        deadline = time.monotonic() + 5
        while self.reader.version(key) != stored and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.reader.version(key)


def open_index(config: Config, clock: Callable[[], float] = time.time) -> SiteIndex:
    return SiteIndex(config, clock)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


def request(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> Reply:
    """One HTTP request with exactly these headers: no redirects followed, no decoding."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request(method, target, headers=headers or {})
        response = connection.getresponse()
        body = response.read()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, body)
    finally:
        connection.close()


class Server:
    """A real threaded HTTP server on 127.0.0.1 running a feedhub app."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def get(self, path: str, headers: dict[str, str] | None = None, method: str = "GET") -> Reply:
        return request(self.url + path, headers, method)

    def stop(self) -> None:
        self._server.shutdown()
        self.app.extensions["feedhub"]["watcher"].stop()


def wait_for(condition: Callable[[], object], timeout: float = 10.0, interval: float = 0.05) -> object:
    """Poll until ``condition()`` is truthy; generous, since the machines are shared and slow."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


class FrozenClock:
    """A clock that only moves when the test says so."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def feedhub(
    *arguments: str, timeout: float = 120, memory: int | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`feedhub ARGUMENTS` as a real process; ``memory`` caps its address space (bytes), so
    a run that would blow up fails instead of taking the machine with it."""

    def limit() -> None:
        if memory is not None:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    return subprocess.run(
        [sys.executable, "-m", "feedhub", *arguments],
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=limit,
        cwd=cwd,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


class ServeProcess:
    """`feedhub serve` (gunicorn) as a real subprocess on a free loopback port."""

    def __init__(self, config_path: Path, log_path: Path, *options: str, port: int | None = None) -> None:
        self.url = f"http://127.0.0.1:{port or free_port()}"
        self.log_path = log_path
        port = self.url.rsplit(":", 1)[1]
        command = [sys.executable, "-m", "feedhub", "serve", "--config", str(config_path), "--port", port]
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen([*command, "--no-access-log", *options], stdout=log, stderr=log)
        if not wait_for(self._healthy, timeout=60, interval=0.1):
            self.stop()
            raise AssertionError(f"feedhub serve did not start:\n{self.log()}")

    def _healthy(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"feedhub serve exited with {self.process.returncode}:\n{self.log()}")
        try:
            return self.get("/healthz").status == 200
        except OSError:
            return False

    def get(self, path: str, headers: dict[str, str] | None = None) -> Reply:
        return request(self.url + path, headers)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


def pool_processes() -> list[int]:
    """The processes of this one's pools (parsing, reading posts): the children of its forkserver."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(stat[1]), []).append(int(entry))
    servers = [
        pid
        for pid in children.get(os.getpid(), [])
        if b"forkserver" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]
    return [pid for server in servers for pid in children.get(server, [])]


def kill_all(pids: list[int]) -> int:
    killed = 0
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
            killed += 1
        except ProcessLookupError:
            pass
    return killed
