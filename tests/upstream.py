"""A scripted upstream web server on 127.0.0.1 for the aggregator's tests.

Each path answers from a script: fixed responses played in order (the last one
repeats), or files served like a well-behaved feed host (ETag, Last-Modified, 304).
Every request is recorded, headers included, so tests can check what feedhub sent.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before the status line
    drip: float = 0.0  # seconds between body bytes: a server that sends too slowly


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names


class Upstream:
    def __init__(self) -> None:
        self.routes: dict[str, Callable[[Seen], Response]] = {}
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return self.base + path

    def script(self, path: str, *responses: Response) -> None:
        """Answer ``path`` with these responses in turn; the last one keeps answering."""
        queue = list(responses)

        def answer(_request: Seen) -> Response:
            with self._lock:
                return queue.pop(0) if len(queue) > 1 else queue[0]

        self.routes[path] = answer

    def feed(
        self, path: str, body: bytes | Callable[[], bytes], content_type: str = "application/rss+xml"
    ) -> None:
        """Serve a feed as a good host does: validators, and 304 when they still match."""

        def answer(request: Seen) -> Response:
            data = body() if callable(body) else body
            etag = f'"{hashlib.sha1(data).hexdigest()[:16]}"'
            modified = formatdate(1_600_000_000 + len(data), usegmt=True)
            headers = {"ETag": etag, "Last-Modified": modified, "Content-Type": content_type}
            if request.headers.get("if-none-match") == etag:
                return Response(304, b"", headers)
            return Response(200, data, headers)

        self.routes[path] = answer

    def file(self, path: str, file: Path, content_type: str = "application/xml") -> None:
        self.feed(path, lambda: file.read_bytes(), content_type)

    def hits(self, path: str) -> list[Seen]:
        return [request for request in self.requests if request.path == path]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                seen = Seen("GET", self.path, {k.lower(): v for k, v in self.headers.items()})
                with upstream._lock:
                    upstream.requests.append(seen)
                route = upstream.routes.get(self.path.split("?")[0])
                response = route(seen) if route else Response(404, b"not found")
                time.sleep(response.delay)
                self.send_response(response.status)
                headers = {"Content-Length": str(len(response.body)), **response.headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if response.drip:
                    for byte in response.body:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(response.drip)
                else:
                    self.wfile.write(response.body)

            def log_message(self, *_args: object) -> None:
                pass  # tests read self.requests instead

        return Handler


def gzipped(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def rss(*items: str, title: str = "Upstream", extra: str = "") -> bytes:
    """An RSS 2.0 document around these <item> elements."""
    body = "".join(items)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
        f"<title>{title}</title><link>https://upstream.example/</link><description>d</description>"
        f"{extra}{body}</channel></rss>"
    ).encode()


def item(
    title: str,
    guid: str | None = None,
    link: str | None = None,
    date: str | None = "Wed, 08 Dec 2021 10:35:30 +0800",
    description: str = "<p>Body.</p>",
    extra: str = "",
) -> str:
    parts = [f"<title>{title}</title>"]
    if guid is not None:
        parts.append(f'<guid isPermaLink="false">{guid}</guid>')
    if link is not None:
        parts.append(f"<link>{link}</link>")
    if date is not None:
        parts.append(f"<pubDate>{date}</pubDate>")
    parts.append(f"<description><![CDATA[{description}]]></description>{extra}")
    return f"<item>{''.join(parts)}</item>"
