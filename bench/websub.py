"""WebSub push, measured in one run on a store of 100k posts.

`feedhub serve` runs with its scheduler (whose process runs the built-in hub); subscribers are
callbacks of one HTTP server on loopback that answer verification and time each delivery.
Rows: a post file written → the subscriber's callback has the new body (median of several);
one topic with 1,000 subscribers → all have it; and the cached-feed throughput of the web
path while one fan-out follows another, against a bare Flask app serving the same bytes that
runs beside it and is measured in turns with it under the same deliveries (on one machine the
hub, the callbacks and both apps share the cores: the bare app measured alone would compare a
quiet machine with a busy one). The quiet figures of both are a row of their own.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from bench.corpus import category_count, new_post
from bench.main import Bench, Row, label, render_table, write_report
from bench.measure import REPO, Process, bare_app, calibrate, get, start, wait_until, wrk
from tests.websub_peers import post_form


class Callbacks:
    """Every subscriber's callback, on one loopback server: verification echoed, and for each text
    the bench waits for, when each callback first got a body holding it (bodies are not kept: a
    fan-out of 144 KB to 1,000 callbacks is 144 MB)."""

    def __init__(self) -> None:
        self.verified: set[str] = set()
        self._awaited: dict[bytes, dict[str, float]] = {}
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.server.request_queue_size = 1024
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def await_text(self, text: str) -> bytes:
        """Start timing the arrival of `text` (before the post holding it is written)."""
        key = text.encode()
        with self.lock:
            self._awaited[key] = {}
        return key

    def arrival(self, name: str, text: bytes) -> float | None:
        """When callback `/name` first got a body holding `text` (time.monotonic), or None."""
        with self.lock:
            return self._awaited[text].get(f"/{name}")

    def reached(self, text: bytes) -> int:
        """How many callbacks got a body holding `text`."""
        with self.lock:
            return len(self._awaited[text])

    def forget(self, text: bytes) -> None:
        with self.lock:
            self._awaited.pop(text, None)

    def _arrived(self, path: str, body: bytes) -> None:
        now = time.monotonic()
        with self.lock:
            for text, arrivals in self._awaited.items():
                if text in body:
                    arrivals.setdefault(path, now)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        callbacks = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: object) -> None:
                pass

            def do_GET(self) -> None:
                params = parse_qs(urlsplit(self.path).query)
                with callbacks.lock:
                    callbacks.verified.add(urlsplit(self.path).path)
                self._answer(params.get("hub.challenge", [""])[0].encode())

            def do_POST(self) -> None:
                callbacks._arrived(self.path, self.rfile.read(int(self.headers.get("Content-Length", 0))))
                self._answer(b"")

            def _answer(self, body: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


class FanOuts:
    """Posts into the fan-out topic one after another, each as soon as the last one reached every
    subscriber: deliveries go on without a backlog growing, for as long as it runs."""

    def __init__(self, store: Path, category: str, callbacks: Callbacks, subscribers: int) -> None:
        self.store, self.category, self.callbacks, self.subscribers = store, category, callbacks, subscribers
        self.completed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> FanOuts:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        number = 200
        while not self._stop.is_set():
            title = self.callbacks.await_text(f"扇出 {number} {time.time()}")
            new_post(self.store, number, self.category, title.decode())
            while self.callbacks.reached(title) < self.subscribers and not self._stop.wait(0.05):
                pass
            self.completed += self.callbacks.reached(title) == self.subscribers
            self.callbacks.forget(title)
            number += 1


def serve_with_hub(bench: Bench, store: Path) -> Process:
    config = store / "feedhub.yaml"
    config.write_text(
        config.read_text("utf-8")
        + "websub:\n  allow_private_callbacks: true\n  max_subscriptions_per_callback_host: 10000\n",
        "utf-8",
    )
    command = [sys.executable, "-m", "feedhub", "serve", "--config", str(config), "--port", "{port}"]
    server, _ = start(
        [*command, "--no-access-log", "--log-level", "WARNING"], "/healthz", bench.logs / "websub.log"
    )
    return server


def subscribe(server: Process, callbacks: Callbacks, topic: str, names: list[str]) -> None:
    for name in names:
        form = {"hub.mode": "subscribe", "hub.topic": topic, "hub.callback": f"{callbacks.base}/{name}"}
        status, text = post_form(server.url + "/websub", form)
        if status != 202:
            raise RuntimeError(f"subscribing {name}: {status} {text}")
    if wait_until(lambda: all(f"/{name}" in callbacks.verified for name in names), timeout=300) is None:
        raise RuntimeError(f"{len(names) - len(callbacks.verified)} subscriptions were not verified")


def web_path_rows(
    bench: Bench, store: Path, fan: str, callbacks: Callbacks, subscribers: int, url: str
) -> None:
    """The cached feed of feedhub and of the bare app serving its bytes: quiet, then while fan-outs
    go on. The bare app runs beside feedhub throughout and is measured under the same deliveries
    (the hub, the callbacks and both apps share this machine's cores), in turns with feedhub."""
    _, headers, body = get(url)
    body_file = bench.work / "websub-feed.bin"
    body_file.write_bytes(body)
    bare, _ = bare_app(body_file, headers["content-type"], bench.logs / "bare.log", workers=2, threads=4)
    duration = bench.args.duration
    try:
        for target in (url, f"{bare.url}/feed"):
            wrk(target, 8, 2, repeats=1)  # warm
        quiet = (wrk(url, 8, duration), wrk(f"{bare.url}/feed", 8, duration))
        ours, theirs = [], []
        with FanOuts(store, fan, callbacks, subscribers) as fan_outs:
            for _ in range(3):
                theirs.append(wrk(f"{bare.url}/feed", 8, duration, repeats=1).requests_per_second)
                ours.append(wrk(url, 8, duration, repeats=1).requests_per_second)
        completed = fan_outs.completed
    finally:
        bare.stop()
    if completed < 3:
        raise RuntimeError(f"only {completed} fan-outs completed while the web path was measured")
    size = f"{len(body) // 1024} KB"
    loaded, bare_loaded = statistics.median(ours), statistics.median(theirs)
    bench.add(
        Row(
            f"cached {size} feed, no deliveries going on",
            label(bench.args.size),
            quiet[0].requests_per_second,
            "req/s",
            "bare Flask app, same bytes",
            quiet[1].requests_per_second,
        )
    )
    bench.add(
        Row(
            f"cached {size} feed while {subscribers:,} subscribers get post after post "
            f"({completed} fan-outs during the runs)",
            label(bench.args.size),
            loaded,
            "req/s",
            "bare Flask app, same bytes, same deliveries",
            bare_loaded,
            "≥ 0.9× bare",
            loaded >= 0.9 * bare_loaded,
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.websub", description=__doc__)
    parser.add_argument("--size", type=int, default=100_000, help="posts in the store")
    parser.add_argument("--subscribers", type=int, default=1000, help="subscribers of the fan-out topic")
    parser.add_argument("--duration", type=int, default=4, help="seconds of each wrk run")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/feedhub-bench"))
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "performance.md")
    args = parser.parse_args(argv)
    print(f"store: {args.size:,} posts / {category_count(args.size):,} categories", flush=True)
    bench = Bench(args)
    unit = calibrate()
    store = bench.store(args.size)
    categories = bench.categories(store)
    (steady, _), (one, _), (fan, _) = (
        categories[0],
        categories[len(categories) // 4],
        categories[len(categories) // 2],
    )
    server = serve_with_hub(bench, store)
    callbacks = Callbacks()
    base = "https://bench.example"
    try:
        time.sleep(7)  # past the workers' first full pass
        subscribe(server, callbacks, f"{base}/feeds/{one}.atom", ["latency"])
        timings = []
        for number in range(10):
            title = callbacks.await_text(f"推送 {number} {time.time()}")
            written = time.monotonic()
            new_post(store, number, one, title.decode())
            wait_until(partial(callbacks.arrival, "latency", title), timeout=60)
            arrived = callbacks.arrival("latency", title)
            timings.append(arrived - written if arrived is not None else 60.0)
            callbacks.forget(title)
            time.sleep(0.5)
        latency = statistics.median(timings)
        bench.add(
            Row(
                "post file → subscriber has the new body (median of 10)",
                label(args.size),
                latency,
                "s",
                "—",
                None,
                "≤ 1 s",
                latency <= 1,
            )
        )

        names = [f"fan{number:04d}" for number in range(args.subscribers)]
        subscribe(server, callbacks, f"{base}/feeds/{fan}.atom", names)
        title = callbacks.await_text(f"扇出 {time.time()}")
        written = time.monotonic()
        new_post(store, 100, fan, title.decode())
        wait_until(lambda: callbacks.reached(title) == len(names), timeout=120, interval=0.05)
        last = max((callbacks.arrival(name, title) or float("inf") for name in names), default=float("inf"))
        fan_out = last - written
        callbacks.forget(title)
        bench.add(
            Row(
                f"one topic, {args.subscribers:,} subscribers: all delivered",
                label(args.size),
                fan_out,
                "s",
                "—",
                None,
                "≤ 10 s",
                fan_out <= 10,
            )
        )
        web_path_rows(bench, store, fan, callbacks, len(names), f"{server.url}/feeds/{steady}.atom")
    finally:
        server.stop()
        callbacks.server.shutdown()
        for leftover in (store / "_posts").glob("*-bench-*.md"):
            leftover.unlink()
    table = render_table(bench.rows)
    print("\n" + table)
    write_report(args, table, unit, marker="websub", heading="WebSub push")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
