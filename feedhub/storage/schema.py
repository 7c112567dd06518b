"""Schema versions, migrated in place: one version per part (the index, the aggregator state, …).

Each part records its version in ``schema_versions``. Opening a part whose tables are at
this version reads one row and takes no lock; an older part is brought up step by step in
one transaction (the aggregator's state is not derived from anything, so its tables are
never dropped); a part from a newer feedhub is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum

from feedhub.errors import StorageError, StorageFault
from feedhub.storage.base import Backend, Connection, Dialect


class Migration(Enum):
    CURRENT = "current"
    CREATED = "created"
    UPGRADED = "upgraded"
    REBUILT = "rebuilt"  # a derived part too old to upgrade: its tables made again, empty


@dataclass(frozen=True)
class Schema:
    part: str  # names it in schema_versions and in messages
    version: int
    tables: str  # statements (separated by ";\n") that create this version's tables
    # The tables one backend makes its own way (full-text search), after `tables`.
    dialect_tables: Mapping[Dialect, str] = field(default_factory=dict)
    # What version n adds to version n - 1, for every n an existing database may be at.
    steps: Mapping[int, str] = field(default_factory=dict)
    # For a derived part: its tables, children first, dropped when it is too old for the steps.
    derived_tables: tuple[str, ...] = ()
    # The version of a SQLite file made before schema_versions existed (0: none there). PostgreSQL
    # support came with schema_versions, so no such database exists there.
    legacy_version: Callable[[Connection], int] | None = None


_VERSIONS = "CREATE TABLE IF NOT EXISTS schema_versions (part TEXT PRIMARY KEY, version BIGINT NOT NULL)"


def migrate(backend: Backend, schema: Schema) -> Migration:
    """Bring `schema.part` to `schema.version`; the common case (already there) takes no lock."""
    if _stored_version(backend, schema) == schema.version:
        return Migration.CURRENT
    with backend.transaction() as conn:
        backend.serialize(conn, "migrate")  # two processes starting at once migrate once
        conn.execute(_VERSIONS)
        row = conn.execute("SELECT version FROM schema_versions WHERE part=?", (schema.part,)).fetchone()
        version = row["version"] if row else 0
        if row is None and schema.legacy_version and backend.dialect is Dialect.SQLITE:
            version = schema.legacy_version(conn)
        if version > schema.version:
            raise StorageError(
                backend.where,
                f"the {schema.part} is from a newer feedhub (schema {version}, this one knows up to "
                f"{schema.version}); run that feedhub, or upgrade this one",
                StorageFault.NEWER,
            )
        if version == schema.version:
            outcome = Migration.CURRENT
        elif version and all(step in schema.steps for step in range(version + 1, schema.version + 1)):
            for step in range(version + 1, schema.version + 1):
                run_script(conn, schema.steps[step])
            outcome = Migration.UPGRADED
        elif version and not schema.derived_tables:
            raise AssertionError(f"{schema.part}: no way from schema {version} to {schema.version}")
        else:
            for table in schema.derived_tables:
                conn.execute(f"DROP TABLE IF EXISTS {table}{backend.drop_cascade}")
            run_script(conn, schema.tables)
            run_script(conn, schema.dialect_tables.get(backend.dialect, ""))
            outcome = Migration.REBUILT if version else Migration.CREATED
        conn.execute(
            "INSERT INTO schema_versions VALUES (?, ?) "
            "ON CONFLICT (part) DO UPDATE SET version=excluded.version",
            (schema.part, schema.version),
        )
    return outcome


def _stored_version(backend: Backend, schema: Schema) -> int | None:
    try:
        with backend.reading() as conn:
            row = conn.execute("SELECT version FROM schema_versions WHERE part=?", (schema.part,)).fetchone()
    except StorageError as exc:
        if exc.fault is StorageFault.UNAVAILABLE:
            raise
        return None  # no such table yet (or a damaged file): the transaction decides
    return int(row["version"]) if row else None


def run_script(conn: Connection, script: str) -> None:
    """Statements one by one, inside the caller's transaction."""
    for statement in script.split(";\n"):
        if statement.strip():
            conn.execute(statement)
