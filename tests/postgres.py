"""A real PostgreSQL server for the tests: Debian's server binaries, a cluster in a temporary
folder, on a free loopback port, run as an unprivileged user (the server refuses root)."""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

UNPRIVILEGED_USER = "nobody"
SUPERUSER = "feedhub"


def server_binaries() -> Path | None:
    """The folder of initdb and postgres: Debian's newest version, else the PATH's."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[-3]))
    if versions:
        return versions[-1].parent
    found = shutil.which("postgres")
    return Path(found).parent if found else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PostgresServer:
    def __init__(self, binaries: Path) -> None:
        self.binaries = binaries
        self.folder = Path(tempfile.mkdtemp(prefix="feedhub-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self._names = itertools.count(1)
        self._process: subprocess.Popen[bytes] | None = None
        self._as_root = os.geteuid() == 0
        if self._as_root:
            entry = pwd.getpwnam(UNPRIVILEGED_USER)
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
        initdb = [str(binaries / "initdb"), "-D", str(self.data), "-U", SUPERUSER, "--auth=trust"]
        self._run([*initdb, "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"])
        self.start()

    def _user(self) -> dict[str, object]:
        return {"user": UNPRIVILEGED_USER, "group": "nogroup"} if self._as_root else {}

    def _run(self, command: list[str]) -> None:
        result = subprocess.run(command, capture_output=True, cwd=self.folder, **self._user())  # type: ignore[call-overload]
        if result.returncode:
            raise RuntimeError(f"{command[0]} failed: {result.stderr.decode(errors='replace')}")

    def start(self) -> None:
        """Start the server (again, after stop or kill) and wait until it takes connections."""
        log = open(self.folder / "server.log", "ab")  # noqa: SIM115 - the server writes it while it runs
        settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.folder),
            "max_connections": "400",
            # A killed server keeps its commits without fsync (the kernel has them); a lost machine would not.
            "fsync": "off",
            "full_page_writes": "off",
            "shared_buffers": "32MB",
        }
        options = [part for name, value in settings.items() for part in ("-c", f"{name}={value}")]
        command = [str(self.binaries / "postgres"), "-D", str(self.data), "-p", str(self.port), *options]
        self._process = subprocess.Popen(  # type: ignore[call-overload]
            command, stdout=log, stderr=log, cwd=self.folder, **self._user()
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(self.url("postgres"), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"PostgreSQL did not start: {(self.folder / 'server.log').read_text()}"
                    ) from None
                time.sleep(0.1)

    def stop(self, kill: bool = False) -> None:
        """A fast shutdown (SIGINT), or the server killed with -9 (a crash)."""
        if self._process is None:
            return
        self._process.send_signal(signal.SIGKILL if kill else signal.SIGINT)
        self._process.wait(timeout=30)
        self._process = None
        if kill:  # the killed postmaster's children go too, or they hold the port
            subprocess.run(["pkill", "-9", "-f", f"postgres.*{self.data}"], check=False)
            time.sleep(0.2)

    def url(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """The URL of a new, empty database (each test its own: locks and notices are per database)."""
        name = f"test_{next(self._names)}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name} TEMPLATE template0")
        return self.url(name)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def start_server() -> PostgresServer:
    binaries = server_binaries()
    if binaries is None:
        pytest.skip("no PostgreSQL server binaries (Debian's postgresql package); .ci/run installs them")
    return PostgresServer(binaries)
