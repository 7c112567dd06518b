"""The error family: every message names the file (or source) and says what is wrong."""

from __future__ import annotations

from enum import Enum
from pathlib import Path


class FeedhubError(Exception):
    """A problem a user can act on; ``str()`` is the whole message."""


class ConfigError(FeedhubError):
    """The configuration cannot be used. The CLI exits with status 2."""

    def __init__(self, path: Path | str, key: str | None, problem: str) -> None:
        self.path = str(path)
        self.key = key
        self.problem = problem
        where = f"{self.path}: {key}" if key else self.path
        super().__init__(f"{where}: {problem}")


class PostError(FeedhubError):
    """A post file cannot be published; the reason is shown to the operator."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class StorageFault(Enum):
    """What kind of failure a StorageError is: callers decide by it, never by driver exceptions."""

    CONSTRAINT = "constraint"  # a row broke a rule of the schema: the data's fault, not the database's
    DAMAGED = "damaged"  # not a database, or a corrupt one
    UNAVAILABLE = "unavailable"  # cannot be opened or reached
    FULL = "full"
    READ_ONLY = "read-only"
    LOCKED = "locked"
    NEWER = "newer"  # written by a newer feedhub
    OTHER = "other"


class StorageError(FeedhubError):
    """The database failed; ``str()`` names it (a file, or an address without its password) and
    says what an operator can do. No sqlite3 or psycopg exception reaches a caller: this does."""

    def __init__(self, where: str, problem: str, fault: StorageFault = StorageFault.OTHER) -> None:
        self.where = where
        self.problem = problem
        self.fault = fault
        super().__init__(f"{where}: {problem}")
