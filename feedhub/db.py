"""SQLite connections shared safely by threads and processes (WAL, one connection each)."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class Database:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()

    def conn(self) -> sqlite3.Connection:
        """This thread's connection; never one made before a fork (gunicorn --preload)."""
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def forget_connection(self) -> None:
        """Drop this thread's connection (before the file is deleted and made again)."""
        self._local.conn = None

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, taken at once so that it cannot fail half-way on a lock."""
        conn = self.conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def run_script(conn: sqlite3.Connection, script: str) -> None:
    """Statements one by one, inside the caller's transaction (executescript would commit it)."""
    for statement in script.split(";\n"):
        if statement.strip():
            conn.execute(statement)
