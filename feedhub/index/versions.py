"""Which feeds changed: a version number per feed (a category slug, or SITE), bumped by the writer.

Web processes key their built feeds by these numbers. With SQLite each question reads the
shared file (microseconds, and a change by any process is seen at once). With PostgreSQL a
question must not cost a round trip to another host: the numbers are kept in memory and
updated from the writer's NOTIFY; after every (re)connection all of them are read again, so
a notice missed while the database was away is never a stale feed for longer than that.
"""

from __future__ import annotations

import threading
from typing import Protocol

from feedhub.index.schema import CHANGES_CHANNEL, SITE
from feedhub.storage.base import Backend, Connection, Listener


class Versions(Protocol):
    def version(self, key: str) -> int: ...

    def problem(self) -> str | None: ...  # why changes may not be arriving, for /healthz


class QueriedVersions:
    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    def version(self, key: str) -> int:
        with self._backend.reading() as conn:
            row = conn.execute("SELECT version FROM versions WHERE key=?", (key,)).fetchone()
        return int(row["version"]) if row else 0

    def problem(self) -> str | None:
        return None


class NotifiedVersions:
    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._known: dict[str, int] = {}
        self._lock = threading.Lock()
        self._listener: Listener = backend.listen(CHANGES_CHANNEL, self._on_notice, self._read_all)

    def version(self, key: str) -> int:
        return self._known.get(key, 0)

    def problem(self) -> str | None:
        if self._listener.connected.is_set():
            return None
        return self._listener.problem or "not yet connected to the database"

    def wait_connected(self, timeout: float) -> bool:
        return self._listener.connected.wait(timeout)

    def stop(self) -> None:
        self._listener.stop()

    def _read_all(self) -> None:
        with self._backend.reading() as conn:
            rows = conn.execute("SELECT key, version FROM versions").fetchall()
        with self._lock:
            self._known = {row["key"]: int(row["version"]) for row in rows}

    def _on_notice(self, _payload: str) -> None:
        # Every bump sets the keys it touches to one above the highest so far: what is above the
        # highest known is what changed. A smaller site version is a rebuilt index: read all.
        with self._lock:
            highest = max(self._known.values(), default=0)
        with self._backend.reading() as conn:
            changed = versions_above(conn, highest)
            site = conn.execute("SELECT version FROM versions WHERE key=?", (SITE,)).fetchone()
        if site is None or int(site["version"]) < self._known.get(SITE, 0):
            self._read_all()
            return
        with self._lock:
            self._known.update(changed)


def versions_above(conn: Connection, version: int) -> dict[str, int]:
    """The feeds changed since the highest version was `version`, with their versions: every bump
    sets the keys it touches one above the highest so far."""
    rows = conn.execute("SELECT key, version FROM versions WHERE version > ?", (version,)).fetchall()
    return {row["key"]: int(row["version"]) for row in rows}
