"""The storage interface every persisted table goes through, whatever the database.

SQL is written once, in the dialect both SQLite and PostgreSQL speak (``?`` parameters,
``ON CONFLICT`` upserts, window functions); a backend adapts the parameter style and turns
every driver exception into a StorageError. Rows are read by column name.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from enum import Enum
from typing import Any, Protocol, TypeVar

from feedhub.errors import StorageError


class Dialect(Enum):
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


class Row(Protocol):
    def __getitem__(self, column: str) -> Any: ...


class Result(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


Params = Sequence[object]
_Value = TypeVar("_Value")


# Older SQLite builds take 999 parameters a statement; an `IN (...)` list leaves room for others.
PARAMETERS_PER_STATEMENT = 999
IN_LIST_LENGTH = 500


def marks(count: int) -> str:
    """`count` parameters of a statement."""
    return ", ".join("?" * count)


def in_chunks(values: Sequence[_Value]) -> Iterator[tuple[str, list[_Value]]]:
    """The values in lists short enough for one `IN (...)` on every backend, each with its marks."""
    for start in range(0, len(values), IN_LIST_LENGTH):
        chunk = list(values[start : start + IN_LIST_LENGTH])
        yield marks(len(chunk)), chunk


class _Translated:
    """A driver's result whose reads fail as StorageError too: rows come as they are fetched, and
    a fetch is where a pipelined statement's error (or a lazily stepped SQLite query's) arrives."""

    def __init__(self, raw: Any, connection: Connection) -> None:
        self._raw = raw
        self._connection = connection

    @property
    def rowcount(self) -> int:
        return int(self._raw.rowcount)

    def fetchone(self) -> Any:
        with self._connection.translated():
            return self._raw.fetchone()

    def fetchall(self) -> list[Any]:
        with self._connection.translated():
            return list(self._raw.fetchall())

    def __iter__(self) -> Iterator[Any]:
        rows = iter(self._raw)
        while True:  # one row at a time, as the driver steps: a large table is never all in memory
            with self._connection.translated():
                row = next(rows, None)
            if row is None:
                return
            yield row


class Connection:
    """One database connection as the storage parts use it: driver errors come out as StorageError."""

    def __init__(
        self,
        raw: Any,
        sql: Callable[[str], str],
        fail: Callable[[Exception], StorageError],
        driver_errors: tuple[type[Exception], ...],
    ) -> None:
        self._raw = raw
        self._sql = sql
        self._fail = fail
        self._driver_errors = driver_errors

    @contextmanager
    def translated(self) -> Iterator[None]:
        """The driver's exceptions, raised inside, as StorageError."""
        try:
            yield
        except self._driver_errors as exc:
            raise self._fail(exc) from exc

    def execute(self, sql: str, params: Params = ()) -> Result:
        with self.translated():
            return _Translated(self._raw.execute(self._sql(sql), params), self)

    def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        with self.translated():
            if hasattr(self._raw, "executemany"):
                self._raw.executemany(self._sql(sql), rows)
            else:  # psycopg: on a cursor
                self._raw.cursor().executemany(self._sql(sql), rows)

    @contextmanager
    def pipelined(self) -> Iterator[None]:
        """Statements sent without waiting for each one's answer, where the driver can (psycopg):
        a round trip only where a result is read, and at the end. Inside, an error may arrive at a
        later read or at the end; a statement's rowcount is known only once a later read was made.
        """
        if not hasattr(self._raw, "pipeline"):  # SQLite runs in this process: no trips to save
            yield
            return
        with self.translated(), self._raw.pipeline():
            yield

    def insert_rows(self, sql: str, rows: Sequence[Params], row_marks: str | None = None) -> None:
        """An INSERT of many rows in as few statements as the parameter limit allows (its
        ``VALUES {}`` takes the rows), not one each: every statement is a round trip to a database
        server. Rows of an upsert must differ in their conflict key: one statement changes a row once.
        `row_marks` is a row's parameters where some need more than a mark (a cast).
        """
        if not rows:
            return
        width = len(rows[0])
        per_statement = max(1, PARAMETERS_PER_STATEMENT // width)
        row_marks = row_marks or f"({marks(width)})"
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            self.execute(
                sql.format(", ".join([row_marks] * len(chunk))), [value for row in chunk for value in row]
            )

    def select_in(self, sql: str, values: Sequence[object], params: Params = ()) -> list[Any]:
        """The rows of a query ending in ``IN ({})`` for these values, however many: run once per
        list short enough for every backend, with `params` before the values each time."""
        return [
            row
            for listed, chunk in in_chunks(values)
            for row in self.execute(sql.format(listed), (*params, *chunk))
        ]

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested transaction: what fails inside it is undone without undoing the rest."""
        self.execute("SAVEPOINT part")
        try:
            yield
        except BaseException:
            self.execute("ROLLBACK TO part")
            self.execute("RELEASE part")
            raise
        self.execute("RELEASE part")


class Leadership(Protocol):
    """A role held by one process at a time (the indexer): lost when that process dies."""

    def held(self) -> bool: ...

    def release(self) -> None: ...


class Listener(Protocol):
    """Notices arriving on a channel, on a thread of their own."""

    @property
    def connected(self) -> threading.Event: ...

    @property
    def problem(self) -> str | None: ...  # why it is not connected

    def stop(self) -> None: ...


class Backend(ABC):
    """A database: SQLite files in the data folder, or one PostgreSQL database shared by hosts."""

    dialect: Dialect
    where: str  # names the database in messages: a path, or an address without its password

    @abstractmethod
    def reading(self) -> AbstractContextManager[Connection]:
        """A connection for reads: it takes no lock, so it never waits behind a writer."""

    @abstractmethod
    def transaction(self, patient: bool = True) -> AbstractContextManager[Connection]:
        """A write transaction: committed at the end, rolled back on any exception. One that is not
        `patient` gives up (StorageFault.LOCKED) at once when another writer holds what it needs."""

    @abstractmethod
    def exclusive(self, name: str) -> AbstractContextManager[None]:
        """Wait for, then hold, the lock called `name` across every process sharing this database."""

    @abstractmethod
    def lead(self, name: str) -> Leadership | None:
        """Take the role `name` if no live process holds it (never waits); None when one does."""

    def close(self) -> None:  # noqa: B027 - most backends hold nothing to give back
        """Give back what it holds open (a pool, listeners)."""

    @contextmanager
    def bulk(self) -> Iterator[None]:
        """Inside, this thread writes many rows in a row (a cold sync): a backend may trade
        memory for fewer page writes. What it commits is as durable as any other commit."""
        yield

    def write_in_bulk(self) -> None:  # noqa: B027 - most backends have nothing to trade
        """As inside `bulk`, for as long as this thread's connection lives: for a process that only
        writes many rows (a cold sync's writers); whoever made them leaves `bulk` once they are done."""

    def discard(self) -> bool:
        """Delete a damaged database that holds only derived data, to be made again; False where
        that is not feedhub's to do (a server's database)."""
        return False

    @abstractmethod
    def serialize(self, conn: Connection, name: str) -> None:
        """Within this transaction, wait for every other transaction that asked for `name`."""

    drop_cascade = ""  # what DROP TABLE needs to drop a table others refer to
    # What a SELECT in a write transaction adds to lock its rows, skipping rows another holds
    # (SQLite's writers take turns for the whole database: nothing to add).
    skip_locked = ""

    @property
    def shared(self) -> bool:
        """Whether processes on other hosts use this database too (changes then arrive by notice)."""
        return False

    @abstractmethod
    def notify(self, conn: Connection, channel: str, payload: str) -> None:
        """Tell every listener of `channel`, once this transaction commits."""

    def listen(
        self, channel: str, on_notice: Callable[[str], None], on_connect: Callable[[], None]
    ) -> Listener:
        """Call `on_notice(payload)` for each notice and `on_connect()` after every (re)connection,
        until stopped. Only a shared database has notices."""
        raise NotImplementedError(f"{self.where}: {self.dialect.value} has no notices")
