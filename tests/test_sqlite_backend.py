"""The SQLite backend's bulk writes: fewer page writes, the same durability."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from feedhub.storage.sqlite import AUTOCHECKPOINT_PAGES, BULK_CACHE_KIB, BULK_CHECKPOINT_PAGES, SqliteBackend

# Commits a row at a time inside a bulk write and says so after each commit, then waits to be killed.
_BULK_WRITER = """
import sys
from pathlib import Path
from feedhub.storage.sqlite import SqliteBackend
backend = SqliteBackend(Path(sys.argv[1]))
with backend.bulk():
    for number in range(5):
        with backend.transaction() as conn:
            conn.execute("INSERT INTO t VALUES (?)", (number,))
        print(number, flush=True)
    sys.stdin.read()
"""


def make_table(path: Path) -> SqliteBackend:
    backend = SqliteBackend(path)
    with backend.transaction() as conn:
        conn.execute("CREATE TABLE t (n INTEGER)")
    return backend


def pragma(backend: SqliteBackend, name: str) -> int:
    return int(backend.connection().execute(f"PRAGMA {name}").fetchone()[0])


def test_a_bulk_write_is_seen_as_it_commits_and_leaves_the_wal_emptied(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    backend = make_table(path)
    cache = pragma(backend, "cache_size")
    wal = Path(f"{path}-wal")
    with backend.bulk():
        assert (pragma(backend, "cache_size"), pragma(backend, "wal_autocheckpoint")) == (
            -BULK_CACHE_KIB,
            BULK_CHECKPOINT_PAGES,
        )
        for number in range(2000):
            with backend.transaction() as conn:
                conn.execute("INSERT INTO t VALUES (?)", (number,))
        with sqlite3.connect(path) as reader:  # another process's view: every commit, at once
            assert reader.execute("SELECT count(*) FROM t").fetchone()[0] == 2000
        assert wal.stat().st_size > 1.5 * AUTOCHECKPOINT_PAGES * 4096  # the default's would have
    assert wal.stat().st_size == 0  # copied into the database, and its space given back
    assert (pragma(backend, "cache_size"), pragma(backend, "wal_autocheckpoint")) == (
        cache,
        AUTOCHECKPOINT_PAGES,
    )


def test_what_a_bulk_write_committed_survives_its_process_killed(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    make_table(path)
    writer = subprocess.Popen(
        [sys.executable, "-c", _BULK_WRITER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parent.parent,
    )
    try:
        assert writer.stdout is not None
        for number in range(5):
            assert writer.stdout.readline().strip() == str(number)
        os.kill(writer.pid, signal.SIGKILL)
    finally:
        writer.kill()
        writer.wait()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert [row[0] for row in conn.execute("SELECT n FROM t ORDER BY n")] == [0, 1, 2, 3, 4]
