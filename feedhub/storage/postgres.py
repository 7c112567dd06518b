"""PostgreSQL, for several hosts: one database shared by web nodes, the indexer and pollers.

psycopg 3 with a connection pool per process (checked on checkout, so a restarted server
costs one failed request at most, never a dead pool). Locks between hosts are advisory
locks, held by a session: the server drops them when the holding process dies or its
connection breaks. Changes are announced with NOTIFY, which the server delivers on commit.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
import psycopg_pool
from psycopg import errors as pg_errors
from psycopg.rows import dict_row

from feedhub.errors import StorageError, StorageFault
from feedhub.storage.base import Backend, Connection, Dialect

log = logging.getLogger(__name__)

# A poller's jobs (8 by default), its lease renewals and the WebSub thread each hold one at times.
POOL_MAX_CONNECTIONS = 16
CONNECT_TIMEOUT_SECONDS = 5
CHECKOUT_TIMEOUT_SECONDS = 5.0  # waiting for a connection: busy, or the server away
LISTEN_RETRY_SECONDS = 1.0
NOTICE_WAIT_SECONDS = 0.25  # how long the listener waits for a notice before it checks whether to stop
IMPATIENT_MS = 200  # how long a transaction that is not patient waits for a lock


def public_address(url: str) -> str:
    """The database URL without its password (it is named in logs and messages)."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")
    if netloc[1]:
        user = netloc[0].partition(":")[0]
        host = f"{user}@{netloc[2]}"
    else:
        host = parts.netloc
    query = urlencode([(key, value) for key, value in parse_qsl(parts.query) if key != "password"])
    return urlunsplit((parts.scheme, host, parts.path, query, ""))


@lru_cache(maxsize=256)
def _driver_sql(sql: str) -> str:
    """``?`` parameters as PostgreSQL numbers them (``$1, $2, …``), for psycopg's raw cursor: it
    sends the query as written, where its own ``%s`` style would be parsed for placeholders on
    every run (most of the driver's time in a many-row INSERT, which is a new string each time)."""
    parts = sql.split("?")
    return "".join(f"{part}${number}" for number, part in enumerate(parts[:-1], 1)) + parts[-1]


class PostgresBackend(Backend):
    dialect = Dialect.POSTGRESQL
    drop_cascade = " CASCADE"
    skip_locked = " FOR UPDATE SKIP LOCKED"

    def __init__(self, url: str) -> None:
        self.url = url
        self.where = public_address(url)
        self._pool = psycopg_pool.ConnectionPool(
            url,
            min_size=1,
            max_size=POOL_MAX_CONNECTIONS,
            kwargs={
                "autocommit": True,
                "row_factory": dict_row,
                "cursor_factory": psycopg.RawCursor,
                "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            },
            timeout=CHECKOUT_TIMEOUT_SECONDS,
            check=psycopg_pool.ConnectionPool.check_connection,
            open=False,
            name="feedhub",
        )
        self._pool.open(wait=False)
        self._listeners: list[NoticeListener] = []

    @property
    def shared(self) -> bool:
        return True

    def __reduce__(self) -> tuple[type[PostgresBackend], tuple[str]]:
        return PostgresBackend, (self.url,)  # another process connects with a pool of its own

    def _wrap(self, raw: psycopg.Connection[Any]) -> Connection:
        return Connection(raw, _driver_sql, self.failure, (psycopg.Error,))

    @contextmanager
    def _checked_out(self) -> Iterator[psycopg.Connection[Any]]:
        try:
            with self._pool.connection() as raw:
                yield raw
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:  # connecting failed, or COMMIT did
            raise self.failure(exc) from exc

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        with self._checked_out() as raw:
            yield self._wrap(raw)

    @contextmanager
    def transaction(self, patient: bool = True) -> Iterator[Connection]:
        with self._checked_out() as raw, raw.transaction():
            conn = self._wrap(raw)
            if not patient:
                conn.execute(f"SET LOCAL lock_timeout = '{IMPATIENT_MS}ms'")
            yield conn

    @contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        with self._checked_out() as raw:
            conn = self._wrap(raw)
            conn.execute("SELECT pg_advisory_lock(hashtext(?))", (_lock_name(name),))
            try:
                yield
            finally:
                # A broken connection took the lock with it.
                with contextlib.suppress(StorageError):
                    conn.execute("SELECT pg_advisory_unlock(hashtext(?))", (_lock_name(name),))

    def serialize(self, conn: Connection, name: str) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (_lock_name(name),))

    def lead(self, name: str) -> _Leadership | None:
        raw = self._connect()
        row = raw.execute(
            "SELECT pg_try_advisory_lock(hashtext(%s)) AS taken", (_lock_name(name),)
        ).fetchone()
        if row and row["taken"]:
            return _Leadership(raw)
        raw.close()
        return None

    def _connect(self) -> psycopg.Connection[Any]:
        """A connection of its own, outside the pool (held for as long as a lock or a LISTEN)."""
        try:
            return psycopg.connect(
                self.url, autocommit=True, row_factory=dict_row, connect_timeout=CONNECT_TIMEOUT_SECONDS
            )
        except psycopg.Error as exc:
            raise self.failure(exc) from exc

    def close(self) -> None:
        for listener in self._listeners:
            listener.stop()
        self._pool.close()

    def notify(self, conn: Connection, channel: str, payload: str) -> None:
        conn.execute("SELECT pg_notify(?, ?)", (channel, payload))

    def listen(
        self, channel: str, on_notice: Callable[[str], None], on_connect: Callable[[], None]
    ) -> NoticeListener:
        listener = NoticeListener(self, channel, on_notice, on_connect)
        self._listeners.append(listener)
        return listener

    def failure(self, exc: Exception) -> StorageError:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, pg_errors.IntegrityError):
            return StorageError(self.where, message, StorageFault.CONSTRAINT)
        if isinstance(exc, pg_errors.DiskFull):
            return StorageError(self.where, f"the server's disk is full ({message})", StorageFault.FULL)
        if isinstance(exc, pg_errors.ReadOnlySqlTransaction):
            return StorageError(self.where, f"the server is read-only ({message})", StorageFault.READ_ONLY)
        if isinstance(exc, pg_errors.LockNotAvailable):
            return StorageError(self.where, message, StorageFault.LOCKED)
        if isinstance(exc, psycopg_pool.PoolTimeout | psycopg.OperationalError):
            problem = (
                f"cannot reach PostgreSQL ({message}); check that the server runs and that "
                "`database:` in feedhub.yaml (or FEEDHUB_DATABASE_URL) names it"
            )
            return StorageError(self.where, problem, StorageFault.UNAVAILABLE)
        return StorageError(self.where, message)


def _lock_name(name: str) -> str:
    return f"feedhub:{name}"


class _Leadership:
    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self._raw = raw

    def held(self) -> bool:
        """Whether the session holding the lock is still alive (a dead one lost it)."""
        try:
            self._raw.execute("SELECT 1")
        except psycopg.Error:
            self._raw.close()
            return False
        return True

    def release(self) -> None:
        self._raw.close()


class NoticeListener:
    """A thread that LISTENs on its own connection, reconnecting by itself when the server goes."""

    def __init__(
        self,
        backend: PostgresBackend,
        channel: str,
        on_notice: Callable[[str], None],
        on_connect: Callable[[], None],
    ) -> None:
        self._backend = backend
        self._channel = channel
        self._on_notice = on_notice
        self._on_connect = on_connect
        self._stop = threading.Event()
        self.connected = threading.Event()
        self.problem: str | None = None  # why it is not connected, for /healthz
        self._thread = threading.Thread(target=self._run, name=f"feedhub-listen-{channel}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except (StorageError, psycopg.Error) as exc:
                problem = str(exc) if isinstance(exc, StorageError) else str(self._backend.failure(exc))
                if problem != self.problem:
                    log.warning("%s; listening again every %.0f s", problem, LISTEN_RETRY_SECONDS)
                self.problem = problem
            except Exception:  # a bug in a callback must not end the listening
                log.exception("%s: handling a notice failed", self._backend.where)
            self.connected.clear()
            self._stop.wait(LISTEN_RETRY_SECONDS)

    def _listen(self) -> None:
        with self._backend._connect() as raw:
            raw.execute(psycopg.sql.SQL("LISTEN {}").format(psycopg.sql.Identifier(self._channel)))
            # Whatever changed while not listening is read now, so no notice is missed.
            self._on_connect()
            if self.problem is not None:
                log.info("%s: listening again", self._backend.where)
            self.problem = None
            self.connected.set()
            while not self._stop.is_set():
                for notice in raw.notifies(timeout=NOTICE_WAIT_SECONDS):
                    self._on_notice(notice.payload)
