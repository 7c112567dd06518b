"""Run the app under gunicorn, a production WSGI server, from `feedhub serve`.

The gunicorn master also keeps the scheduler process running (see feedhub.supervise):
it restarts it when it dies, forwards SIGHUP to it (sources.yaml is read again) and
stops it when the server stops.
"""

from __future__ import annotations

import errno
import signal
import socket
from pathlib import Path
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter

from feedhub.config import load_config
from feedhub.errors import FeedhubError
from feedhub.limits import KEEPALIVE_SECONDS, MAX_CONNECTIONS_PER_WORKER
from feedhub.supervise import Supervised
from feedhub.web import create_app

LISTEN_BACKLOG = 2048  # gunicorn's default


class AddressInUse(FeedhubError):
    pass


class FeedhubArbiter(Arbiter):
    """gunicorn's master, with the scheduler as one more supervised child."""

    def __init__(self, app: Any, scheduler: Supervised | None) -> None:
        super().__init__(app)
        self.scheduler = scheduler

    def manage_workers(self) -> None:
        super().manage_workers()
        if self.scheduler is not None:
            self.scheduler.ensure_running()

    def reap_workers(self) -> None:
        if self.scheduler is not None:
            self.scheduler.reap()  # first: gunicorn's waitpid(-1) would take its exit status
        super().reap_workers()
        if self.scheduler is not None:
            self.scheduler.reap()

    def handle_hup(self) -> None:
        super().handle_hup()
        if self.scheduler is not None:
            self.scheduler.send(signal.SIGHUP)

    def stop(self, graceful: bool = True) -> None:
        if self.scheduler is not None:
            self.scheduler.stop()
        super().stop(graceful)


class FeedhubServer(BaseApplication):
    def __init__(
        self,
        config_path: Path,
        options: dict[str, object],
        parent_sync: str | None,
        scheduler: Supervised | None,
    ) -> None:
        self.config_path = config_path
        self.options = options
        self.parent_sync = parent_sync  # the full sync `feedhub serve` made before starting the workers
        self.scheduler = scheduler
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        # Runs in each worker, so every worker gets its own index connection and watcher.
        return create_app(load_config(self.config_path), parent_sync=self.parent_sync)

    def run(self) -> None:
        FeedhubArbiter(self, self.scheduler).run()


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, opened before anything else starts, so a port in use is one clear line."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    address = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
    try:
        listener.bind((host, port))
        listener.listen(LISTEN_BACKLOG)
    except OSError as exc:
        listener.close()
        if exc.errno == errno.EADDRINUSE:
            raise AddressInUse(f"{address} is already in use; choose another with --port") from None
        raise AddressInUse(f"cannot listen on {address}: {exc.strerror}") from None
    return listener


def serve(
    config_path: Path,
    listener: socket.socket,
    workers: int,
    threads: int,
    access_log: bool,
    parent_sync: str | None = None,
    scheduler: Supervised | None = None,
) -> None:
    options: dict[str, object] = {
        "bind": f"fd://{listener.detach()}",  # gunicorn takes the descriptor over
        "workers": workers,
        "threads": threads,
        # Slow and idle clients wait in each worker's event loop, not in its threads.
        "worker_class": "feedhub.worker.BufferingThreadWorker",
        "worker_connections": MAX_CONNECTIONS_PER_WORKER,
        "keepalive": KEEPALIVE_SECONDS,
        "accesslog": "-" if access_log else None,
        "proc_name": "feedhub",
        "control_socket_disable": True,
    }
    FeedhubServer(config_path, options, parent_sync, scheduler).run()
