"""Where everything feedhub persists lives: SQLite files in the data folder, or PostgreSQL.

`open_storage` gives the backends of a configured site: with SQLite, the index and the
aggregator state are two files (deleting the index loses nothing; the state is kept apart);
with PostgreSQL, one database holds both, shared by every host.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from feedhub.config import Config
from feedhub.storage.base import Backend
from feedhub.storage.sqlite import SqliteBackend

INDEX_FILE = "index.sqlite3"
STATE_FILE = "aggregator.sqlite3"


@dataclass(frozen=True)
class Storage:
    index: Backend  # derived from the post files: may be rebuilt at any time
    state: Backend  # the aggregator's memory (and every table added later): migrated, never dropped


_shared: dict[tuple[str, int], Backend] = {}
_shared_lock = threading.Lock()


def open_storage(config: Config) -> Storage:
    if config.database is None:
        return Storage(
            SqliteBackend(config.data_dir / INDEX_FILE), SqliteBackend(config.data_dir / STATE_FILE)
        )
    # One pool per process: connections do not survive a fork, and one per caller would be too many.
    key = (config.database, os.getpid())
    with _shared_lock:
        backend = _shared.get(key)
        if backend is None:
            from feedhub.storage.postgres import (
                PostgresBackend,
            )  # only a site with a database pays for psycopg

            backend = _shared[key] = PostgresBackend(config.database)
    return Storage(backend, backend)


def close_shared() -> None:
    """Give back this process's database connections (at exit, or between tests)."""
    with _shared_lock:
        for (_, pid), backend in list(_shared.items()):
            if pid == os.getpid():
                backend.close()
        _shared.clear()
