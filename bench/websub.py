"""WebSub push, measured in one run on a store of 100k posts.

`feedhub serve` runs with its scheduler (whose process runs the built-in hub); subscribers are
callbacks of one HTTP server on loopback that answer verification and time each delivery.
Rows: a post file written → the subscriber's callback has the new body (median of several);
one topic with 1,000 subscribers → all have it; and the cached-feed throughput of the web
path while such deliveries go on, against a bare Flask app serving the same bytes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from bench.corpus import category_count, new_post
from bench.main import Bench, Row, label, render_table, write_report
from bench.measure import REPO, Process, bare_app, calibrate, get, start, wait_until, wrk
from tests.websub_peers import post_form


class Callbacks:
    """Every subscriber's callback, on one loopback server: verification echoed, deliveries timed."""

    def __init__(self) -> None:
        self.verified: set[str] = set()
        self.arrivals: dict[str, list[tuple[float, bytes]]] = {}
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.server.request_queue_size = 1024
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def arrived_with(self, name: str, text: bytes) -> float | None:
        with self.lock:
            return next((when for when, body in self.arrivals.get(name, []) if text in body), None)

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
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with callbacks.lock:
                    callbacks.arrivals.setdefault(self.path, []).append((time.monotonic(), body))
                self._answer(b"")

            def _answer(self, body: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


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
            title = f"推送 {number} {time.time()}"
            new_post(store, number, one, title)
            seen = wait_until(lambda t=title: callbacks.arrived_with("/latency", t.encode()), timeout=60)
            timings.append(seen if seen is not None else 60.0)
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
        title = f"扇出 {time.time()}"
        new_post(store, 100, fan, title)
        done = wait_until(
            lambda: all(callbacks.arrived_with(f"/{name}", title.encode()) for name in names),
            timeout=120,
            interval=0.05,
        )
        fan_out = done if done is not None else float("inf")
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

        # The web path while deliveries go on: a post every second into the fan-out topic.
        url = f"{server.url}/feeds/{steady}.atom"
        _, headers, body = get(url)
        body_file = bench.work / "websub-feed.bin"
        body_file.write_bytes(body)
        stop = threading.Event()

        def keep_publishing() -> None:
            number = 200
            while not stop.wait(1.0):
                new_post(store, number, fan, f"扇出 {number} {time.time()}")
                number += 1

        publisher = threading.Thread(target=keep_publishing, daemon=True)
        wrk(url, 8, 2, repeats=1)
        publisher.start()
        try:
            ours = wrk(url, 8, args.duration)
        finally:
            stop.set()
            publisher.join()
    finally:
        server.stop()
        callbacks.server.shutdown()
        for leftover in (store / "_posts").glob("*-bench-*.md"):
            leftover.unlink()
    bare, _ = bare_app(body_file, headers["content-type"], bench.logs / "bare.log", workers=2, threads=4)
    try:
        wrk(f"{bare.url}/feed", 8, 2, repeats=1)
        theirs = wrk(f"{bare.url}/feed", 8, args.duration)
    finally:
        bare.stop()
    met = ours.requests_per_second >= 0.9 * theirs.requests_per_second
    bench.add(
        Row(
            f"cached {len(body) // 1024} KB feed while {args.subscribers:,} subscribers get a post a second",
            label(args.size),
            ours.requests_per_second,
            "req/s",
            "bare Flask app, same bytes",
            theirs.requests_per_second,
            "≥ 0.9× bare",
            met,
        )
    )
    table = render_table(bench.rows)
    print("\n" + table)
    write_report(args, table, unit, marker="websub", heading="WebSub push")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
