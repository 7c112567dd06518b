"""Run the app under gunicorn, a production WSGI server, from `feedhub serve`."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from gunicorn.app.base import BaseApplication

from feedhub.config import load_config
from feedhub.limits import KEEPALIVE_SECONDS, MAX_CONNECTIONS_PER_WORKER
from feedhub.web import create_app


class FeedhubServer(BaseApplication):
    def __init__(self, config_path: Path, options: dict[str, object], parent_sync: str | None) -> None:
        self.config_path = config_path
        self.options = options
        self.parent_sync = parent_sync  # the full sync `feedhub serve` made before starting the workers
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        # Runs in each worker, so every worker gets its own index connection and watcher.
        return create_app(load_config(self.config_path), parent_sync=self.parent_sync)


def serve(
    config_path: Path,
    host: str,
    port: int,
    workers: int,
    threads: int,
    access_log: bool,
    parent_sync: str | None = None,
) -> None:
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    options: dict[str, object] = {
        "bind": bind,
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
    FeedhubServer(config_path, options, parent_sync).run()
