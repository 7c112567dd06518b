"""Fixtures shared by the tests; the helpers they use live in tests/helpers.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from feedhub.config import DATABASE_ENV, Config
from feedhub.metrics import FOLDER_ENV
from feedhub.storage import close_shared
from feedhub.web import create_app
from tests.helpers import SHARED, Server, SiteFolder
from tests.postgres import PostgresServer, start_server
from tests.upstream import Upstream


def _shared_files() -> dict[str, tuple[int, int]]:
    return {
        str(path): (path.stat().st_mtime_ns, path.stat().st_size)
        for path in SHARED.rglob("*")
        if path.is_file() and ".cache" not in path.parts
    }


@pytest.fixture(scope="session", autouse=True)
def shared_stays_untouched() -> Iterator[None]:
    """Tests never write into ../shared: a test (or a process it starts) that did fails the run."""
    before = _shared_files() if SHARED.is_dir() else {}
    yield
    after = _shared_files() if SHARED.is_dir() else {}
    changed = sorted(set(before.items()) ^ set(after.items()))
    assert not changed, f"the tests wrote into {SHARED}: {changed[:5]}"


@pytest.fixture(autouse=True)
def own_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run folder chosen by one test (an in-process `feedhub poll`) is not inherited by the next
    test's processes: their metrics would add up with it. Nor is a database URL from outside."""
    monkeypatch.delenv(FOLDER_ENV, raising=False)
    monkeypatch.delenv(DATABASE_ENV, raising=False)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session (each test takes a database of its own)."""
    server = start_server()
    yield server
    server.close()


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Where the site stores its index and state: SQLite unless a test is parametrized with
    BOTH_BACKENDS (tests/helpers.py)."""
    yield getattr(request, "param", "sqlite")
    close_shared()  # this test's pools and listeners


@pytest.fixture
def database(request: pytest.FixtureRequest, backend: str) -> str | None:
    """A new PostgreSQL database for this test, or None with SQLite."""
    if backend != "postgresql":
        return None
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.new_database()


@pytest.fixture
def site(tmp_path: Path, database: str | None) -> SiteFolder:
    folder = SiteFolder(tmp_path / "site", database)
    folder.posts.mkdir(parents=True)
    return folder


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def start(config: Config, **options: object) -> Server:
        server = Server(create_app(config, **options))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    yield server
    server.stop()
