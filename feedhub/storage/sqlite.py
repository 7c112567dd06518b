"""SQLite, the embedded default: one file per part in the data folder, WAL, one connection per thread.

Readers never wait for writers (WAL); writers take their transaction at once (BEGIN
IMMEDIATE), so one cannot fail half-way on a lock; locks between processes are files
beside the database (flock), released by the kernel when a process dies.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

from feedhub.errors import StorageError, StorageFault
from feedhub.storage.base import Backend, Connection, Dialect, Leadership

BUSY_TIMEOUT_SECONDS = 30
IMPATIENT_MS = 200  # how long a transaction that is not patient waits for the lock
# A bulk write's page cache (KiB; SQLite's default is 2 MiB): the indexes' random inserts
# (ids, permalinks) otherwise spill and re-read the same pages in every transaction.
BULK_CACHE_KIB = 32 * 1024
AUTOCHECKPOINT_PAGES = 1000  # SQLite's default
# A bulk write's checkpoints, in WAL pages (64 MiB): as fast as none at 100k posts, where none let
# the WAL grow to 1.2 GB beside a 274 MB index (a page rewritten by each commit is a frame each time).
BULK_CHECKPOINT_PAGES = 16384


class SqliteBackend(Backend):
    dialect = Dialect.SQLITE

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)
        self._local = threading.local()

    def connection(self) -> Connection:
        """This thread's connection; never one made before a fork (gunicorn --preload)."""
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            try:
                raw = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
                raw.row_factory = sqlite3.Row
                conn = Connection(raw, str, self.failure, (sqlite3.Error,))
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA foreign_keys=ON")
            except sqlite3.Error as exc:
                raise self.failure(exc) from exc
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        yield self.connection()

    @contextmanager
    def transaction(self, patient: bool = True) -> Iterator[Connection]:
        conn = self.connection()
        with nullcontext() if patient else _impatient(conn):
            conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextmanager
    def bulk(self) -> Iterator[None]:
        # With checkpoints 16 times further apart, a page rewritten by many transactions is copied
        # into the database once per 64 MiB of WAL, not per 4 MiB (the WAL keeps each commit durable).
        conn = self.connection()
        cache = conn.execute("PRAGMA cache_size").fetchone()[0]
        self.write_in_bulk()
        try:
            yield
        finally:
            conn.execute(f"PRAGMA cache_size={cache}")
            conn.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
            # TRUNCATE also gives the grown WAL's disk space back. It waits for readers through the
            # busy handler: briefly, so that a busy site leaves it to the next automatic checkpoint
            # instead of stalling its writers for the whole busy timeout.
            with _impatient(conn):
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def write_in_bulk(self) -> None:
        conn = self.connection()
        conn.execute(f"PRAGMA cache_size=-{BULK_CACHE_KIB}")
        conn.execute(f"PRAGMA wal_autocheckpoint={BULK_CHECKPOINT_PAGES}")

    def __reduce__(self) -> tuple[type[SqliteBackend], tuple[Path]]:
        return SqliteBackend, (self.path,)  # another process opens the same file

    @contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        with open(self.lock_path(name), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def serialize(self, conn: Connection, name: str) -> None:
        pass  # BEGIN IMMEDIATE already made this transaction the only writer

    def notify(self, conn: Connection, channel: str, payload: str) -> None:
        pass  # every process of the one host reads the versions from the file itself

    def lock_path(self, name: str) -> Path:
        return self.path.with_name(f"{self.path.name}.{name}.lock")

    def lead(self, name: str) -> Leadership:
        # Every process on the one host may keep the folder's index: exclusive() takes turns.
        return _EveryProcess()

    def discard(self) -> bool:
        self._local.conn = None
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        return True

    def failure(self, exc: Exception) -> StorageError:
        """The driver's exception as an operator reads it: what failed, and what to do."""
        message = str(exc)
        folder = self.path.parent
        if isinstance(exc, sqlite3.IntegrityError):
            return StorageError(self.where, message, StorageFault.CONSTRAINT)
        if "full" in message:
            return StorageError(
                self.where, f"the disk is full ({message}); free space in {folder}", StorageFault.FULL
            )
        if "readonly" in message or "read-only" in message:
            problem = f"cannot write ({message}); feedhub needs write access to {folder} and the files in it"
            return StorageError(self.where, problem, StorageFault.READ_ONLY)
        if "unable to open" in message:
            problem = f"cannot open ({message}); check that {folder} exists and feedhub may write there"
            return StorageError(self.where, problem, StorageFault.UNAVAILABLE)
        if "locked" in message or "busy" in message:
            problem = (
                f"locked by another process for over {BUSY_TIMEOUT_SECONDS} s ({message}); "
                "a stuck feedhub process may hold it"
            )
            return StorageError(self.where, problem, StorageFault.LOCKED)
        if "not a database" in message or "malformed" in message or "corrupt" in message:
            return StorageError(self.where, f"damaged ({message})", StorageFault.DAMAGED)
        return StorageError(self.where, message)


@contextmanager
def _impatient(conn: Connection) -> Iterator[None]:
    """Inside, the connection waits IMPATIENT_MS for a lock, not the full busy timeout."""
    conn.execute(f"PRAGMA busy_timeout={IMPATIENT_MS}")
    try:
        yield
    finally:
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")


class _EveryProcess:
    def held(self) -> bool:
        return True

    def release(self) -> None:
        pass
