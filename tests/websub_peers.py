"""A small WebSub subscriber written for the tests from the W3C Recommendation
(https://www.w3.org/TR/websub/), not from feedhub's code: it is the other side that
feedhub's hub must satisfy.

It discovers a topic's hubs from the Link header (section 4), asks a hub to subscribe
(5.1), answers verification of intent by echoing hub.challenge (5.3) or as a test scripts
it, records denials (5.2), and takes content distribution (7), checking X-Hub-Signature
(8) against the secret it chose.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

_LINK = re.compile(r'<([^>]*)>\s*;\s*rel="?([^";,]+)"?')


def links(header: str) -> dict[str, list[str]]:
    """An RFC 8288 Link header as {rel: [targets]} (enough of the grammar for feeds)."""
    found: dict[str, list[str]] = {}
    for target, rels in _LINK.findall(header or ""):
        for rel in rels.split():
            found.setdefault(rel.lower(), []).append(target)
    return found


def signature_ok(header: str | None, secret: str, body: bytes) -> bool:
    """Section 8: `method=signature`, the HMAC of the body keyed with the secret."""
    if not header or "=" not in header:
        return False
    method, _, given = header.partition("=")
    if method not in ("sha1", "sha256", "sha384", "sha512"):
        return False
    expected = hmac.new(secret.encode(), body, getattr(hashlib, method)).hexdigest()
    return hmac.compare_digest(expected, given)


@dataclass
class Verification:
    params: dict[str, str]


@dataclass
class Notification:
    headers: dict[str, str]  # lower-case names
    body: bytes
    arrived: float


@dataclass
class Behaviour:
    """How the callback answers; tests change it as they go."""

    verify: str = "echo"  # echo | wrong | refuse (404)
    delivery_statuses: list[int] = field(default_factory=list)  # played in turn, then 200
    delivery_delay: float = 0.0  # seconds before answering a delivery
    huge_answer: bool = False  # answer deliveries with an endless body


class Subscriber:
    """Callbacks at http://127.0.0.1:<port>/cb/<name>, each with its own record."""

    def __init__(self) -> None:
        self.verifications: dict[str, list[Verification]] = {}
        self.notifications: dict[str, list[Notification]] = {}
        self.behaviour: dict[str, Behaviour] = {}
        self.secrets: dict[str, str] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def callback(self, name: str) -> str:
        self.behaviour.setdefault(name, Behaviour())
        return f"{self.base}/cb/{name}"

    def subscribe(
        self,
        hub: str,
        topic: str,
        name: str,
        mode: str = "subscribe",
        lease: int | None = None,
        secret: bool = False,
        extra: dict[str, str] | None = None,
    ) -> tuple[int, str]:
        """Section 5.1: a form POST to the hub; (status, body) of its answer."""
        form = {"hub.callback": self.callback(name), "hub.mode": mode, "hub.topic": topic}
        if lease is not None:
            form["hub.lease_seconds"] = str(lease)
        if secret:
            self.secrets[name] = secrets.token_hex(16)
            form["hub.secret"] = self.secrets[name]
        form.update(extra or {})
        return post_form(hub, form)

    def verified(self, name: str) -> list[Verification]:
        with self._lock:
            return list(self.verifications.get(name, []))

    def received(self, name: str) -> list[Notification]:
        with self._lock:
            return list(self.notifications.get(name, []))

    def stop(self) -> None:
        self._server.shutdown()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        subscriber = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: object) -> None:
                pass

            def _name(self) -> str:
                return urlsplit(self.path).path.removeprefix("/cb/")

            def do_GET(self) -> None:
                name = self._name()
                params = {key: values[0] for key, values in parse_qs(urlsplit(self.path).query).items()}
                with subscriber._lock:
                    subscriber.verifications.setdefault(name, []).append(Verification(params))
                behaviour = subscriber.behaviour.get(name, Behaviour())
                if params.get("hub.mode") == "denied":
                    self._answer(200, b"")
                elif behaviour.verify == "refuse":
                    self._answer(404, b"not mine")
                elif behaviour.verify == "wrong":
                    self._answer(200, b"not-the-challenge")
                else:
                    self._answer(200, params.get("hub.challenge", "").encode())

            def do_POST(self) -> None:
                name = self._name()
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {key.lower(): value for key, value in self.headers.items()}
                with subscriber._lock:
                    subscriber.notifications.setdefault(name, []).append(
                        Notification(headers, body, time.monotonic())
                    )
                    behaviour = subscriber.behaviour.get(name, Behaviour())
                    status = behaviour.delivery_statuses.pop(0) if behaviour.delivery_statuses else 200
                time.sleep(behaviour.delivery_delay)
                if behaviour.huge_answer:
                    self.send_response(status)
                    self.send_header("Content-Length", str(1 << 40))
                    self.end_headers()
                    try:
                        while True:
                            self.wfile.write(b"x" * 65536)
                    except OSError:
                        return
                self._answer(status, b"thanks")

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


def post_form(url: str, form: dict[str, str]) -> tuple[int, str]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=30)
    try:
        connection.request(
            "POST",
            parts.path,
            body=urlencode(form),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


class Hub:
    """A small WebSub hub and publisher written for the tests from the Recommendation: it serves
    a feed that names it (by Link header or in the document), takes subscription requests (5.1),
    verifies intent (5.3) and distributes content (7), signed as section 8 says."""

    def __init__(self, reach: Callable[[str], str] = lambda url: url) -> None:
        self.reach = reach  # where a callback URL is reached from here (the site's base_url mapped)
        self.requests: list[dict[str, str]] = []
        self.verified: dict[str, dict[str, str]] = {}  # callback -> the request it confirmed
        self.refused: list[str] = []  # callbacks that did not echo the challenge
        self.answer_status = 202
        self.lease_seconds = 3600
        self.feed = b""
        self.feed_type = "application/rss+xml"
        self.link_header = True
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self._server.server_port}"
        self.url = self.base + "/hub"
        self.topic = self.base + "/feed"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def publish(self, body: bytes, algorithm: str = "sha256", sign: str = "right") -> list[int]:
        """Section 7: POST the new content to every verified subscriber; the statuses answered.
        `sign`: right, wrong (another key) or none."""
        self.feed = body
        statuses = []
        for callback, request in list(self.verified.items()):
            headers = {
                "Content-Type": self.feed_type,
                "Link": f'<{self.url}>; rel="hub", <{self.topic}>; rel="self"',
            }
            secret = request.get("hub.secret")
            if secret and sign != "none":
                key = secret if sign == "right" else secret + "x"
                digest = hmac.new(key.encode(), body, getattr(hashlib, algorithm)).hexdigest()
                headers["X-Hub-Signature"] = f"{algorithm}={digest}"
            statuses.append(_send("POST", self.reach(callback), body, headers)[0])
        return statuses

    def deny(self, callback: str, reason: str = "not allowed") -> int:
        query = urlencode({"hub.mode": "denied", "hub.topic": self.topic, "hub.reason": reason})
        return _send("GET", f"{self.reach(callback)}?{query}", b"", {})[0]

    def ask(self, callback: str, topic: str, mode: str = "subscribe") -> tuple[int, str]:
        """A verification GET as an impostor would send it: for a subscription nobody asked for."""
        query = urlencode(
            {"hub.mode": mode, "hub.topic": topic, "hub.challenge": "c0ffee", "hub.lease_seconds": "60"}
        )
        status, body = _send("GET", f"{self.reach(callback)}?{query}", b"", {})
        return status, body.decode()

    def stop(self) -> None:
        self._server.shutdown()

    def _verify(self, form: dict[str, str]) -> None:
        challenge = secrets.token_urlsafe(16)
        query = urlencode(
            {
                "hub.mode": form["hub.mode"],
                "hub.topic": form["hub.topic"],
                "hub.challenge": challenge,
                "hub.lease_seconds": str(self.lease_seconds),
            }
        )
        callback = form["hub.callback"]
        status, body = _send("GET", f"{self.reach(callback)}?{query}", b"", {})
        with self._lock:
            if 200 <= status < 300 and body == challenge.encode():
                self.verified[callback] = form
            else:
                self.refused.append(callback)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: object) -> None:
                pass

            def do_GET(self) -> None:
                headers = {"Content-Type": hub.feed_type, "Content-Length": str(len(hub.feed))}
                if hub.link_header:
                    headers["Link"] = f'<{hub.url}>; rel="hub", <{hub.topic}>; rel="self"'
                self.send_response(200)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(hub.feed)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                form = {key: values[0] for key, values in parse_qs(body.decode()).items()}
                with hub._lock:
                    hub.requests.append(form)
                status = hub.answer_status
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                if 200 <= status < 300:
                    threading.Thread(target=hub._verify, args=(form,), daemon=True).start()

        return Handler


def _send(method: str, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=30)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request(method, target, body=body or None, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()
