"""A gunicorn worker that gives a thread only to a request that has fully arrived.

gunicorn's gthread worker hands every new connection to a thread, which then blocks
reading the request: sixteen clients that send half a request and wait (slowloris)
hold every thread of two workers for as long as they like, and the site stops
answering. Here the worker's event loop reads the request line, the headers and a
small body itself, without blocking, on every connection at once; a thread gets the
connection only when the whole request is there. A client has REQUEST_HEAD_TIMEOUT
seconds to send it, idle kept-alive connections close after KEEPALIVE_SECONDS, and a
worker holds MAX_CONNECTIONS_PER_WORKER connections at most (idle ones included).

With TLS configured, gunicorn's own behaviour is kept: the handshake needs the socket
before any request byte can be read (terminate TLS in a front such as nginx instead).
"""

from __future__ import annotations

import contextlib
import errno
import re
import selectors
import socket
import time
from collections import OrderedDict
from dataclasses import dataclass
from functools import partial
from typing import Any

from gunicorn.workers.gthread import TConn, ThreadWorker

from feedhub.limits import (
    MAX_PUSH_BYTES,
    MAX_REQUEST_BODY_BYTES,
    MAX_REQUEST_HEAD_BYTES,
    REQUEST_HEAD_TIMEOUT,
)
from feedhub.websub.callback import CALLBACK_PREFIX

_HEAD_END = b"\r\n\r\n"
_CONTENT_LENGTH = re.compile(rb"^content-length[ \t]*:[ \t]*([^\s]*)[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)
_TRANSFER_ENCODING = re.compile(rb"^transfer-encoding[ \t]*:", re.IGNORECASE | re.MULTILINE)
_RECV_BYTES = 64 * 1024


def _refusal(status: str) -> bytes:
    return f"HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n".encode()


TIMED_OUT = _refusal("408 Request Timeout")
HEAD_TOO_LARGE = _refusal("431 Request Header Fields Too Large")
BODY_TOO_LARGE = _refusal("413 Content Too Large")
LENGTH_REQUIRED = _refusal("411 Length Required")
BAD_REQUEST = _refusal("400 Bad Request")


class ArrivingRequest:
    """The bytes of one request as they arrive, judged incrementally.

    A slow client may send its 64 KiB one byte at a time: each arrival searches only the
    new bytes for the end of the head, and the head is parsed once.
    """

    def __init__(self, data: bytes = b"") -> None:
        self.data = bytearray(data)
        self._searched = 0  # the head's end is not before this offset
        self._needed: int | None = None  # the whole request's length, once the head is known

    def add(self, chunk: bytes) -> None:
        self.data += chunk

    def status(self) -> bytes | None:
        """b"" when the whole request is here, None while more must come, else the refusal to send."""
        if self._needed is None:
            end = self.data.find(_HEAD_END, self._searched)
            if end < 0:
                self._searched = max(0, len(self.data) - len(_HEAD_END) + 1)
                return HEAD_TOO_LARGE if len(self.data) > MAX_REQUEST_HEAD_BYTES else None
            body_length = (
                _body_length(bytes(self.data[:end])) if end <= MAX_REQUEST_HEAD_BYTES else HEAD_TOO_LARGE
            )
            if isinstance(body_length, bytes):
                return body_length
            self._needed = end + len(_HEAD_END) + body_length
        return b"" if len(self.data) >= self._needed else None


def _body_length(head: bytes) -> int | bytes:
    """How many body bytes follow this head, or the refusal it deserves."""
    if _TRANSFER_ENCODING.search(head):
        return LENGTH_REQUIRED  # a chunked body has no length to wait for; feedhub takes no uploads
    lengths = {match.group(1) for match in _CONTENT_LENGTH.finditer(head)}
    if not lengths:
        return 0
    if len(lengths) > 1 or not all(value.isdigit() and len(value) <= 12 for value in lengths):
        return BAD_REQUEST
    length = int(lengths.pop())
    return BODY_TOO_LARGE if length > _body_limit(head) else length


def _body_limit(head: bytes) -> int:
    """Requests are small forms, but for content an upstream WebSub hub pushes to a callback."""
    _method, _, rest = head.partition(b" ")
    return MAX_PUSH_BYTES if rest.startswith(CALLBACK_PREFIX.encode()) else MAX_REQUEST_BODY_BYTES


def request_status(data: bytes) -> bytes | None:
    """The status of ``data`` arrived at once (see ArrivingRequest.status)."""
    return ArrivingRequest(data).status()


@dataclass
class _Arriving:
    """A request still arriving on a connection, and until when it may come."""

    conn: Any  # gunicorn's TConn
    deadline: float
    request: ArrivingRequest


class BufferingThreadWorker(ThreadWorker):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._arriving: OrderedDict[int, _Arriving] = OrderedDict()  # in deadline order

    def accept(self, listener: socket.socket) -> None:
        if self.cfg.is_ssl:
            super().accept(listener)
            return
        try:
            client, address = listener.accept()
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                return
            raise
        self.nr_conns += 1
        self._wait_for_request(TConn(self.cfg, client, address, listener.getsockname()), b"")

    def on_client_socket_readable(self, conn: Any, client: socket.socket) -> None:
        """A kept-alive connection has something to say: its next request is read like a first."""
        if self.cfg.is_ssl:
            super().on_client_socket_readable(conn, client)
            return
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._wait_for_request(conn, b"")

    def enqueue_req(self, conn: Any) -> None:
        if self.cfg.is_ssl or getattr(conn, "request_arrived", False):
            conn.request_arrived = False
            super().enqueue_req(conn)
            return
        # After a response, with pipelined bytes read ahead: they may be half a request.
        self._wait_for_request(conn, conn.parser.unreader.take_buffered() if conn.parser else b"")

    def handle(self, conn: Any) -> Any:
        arrived = getattr(conn, "arrived", None)
        if arrived is not None:
            conn.arrived = None
            conn.data_ready = True  # no waiting in the thread: the bytes are here
            conn.sock.setblocking(True)
            conn.init()
            conn.parser.unreader.unread(arrived)
        return super().handle(conn)

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        while self._arriving:
            arriving = next(iter(self._arriving.values()))
            if arriving.deadline > now:
                break
            self._refuse(arriving, TIMED_OUT)

    # ---- reading requests in the event loop ---------------------------------------------------

    def _wait_for_request(self, conn: Any, data: bytes) -> None:
        arriving = _Arriving(conn, time.monotonic() + REQUEST_HEAD_TIMEOUT, ArrivingRequest(data))
        conn.sock.setblocking(False)
        if not self._settle(arriving):
            self._arriving[id(conn)] = arriving
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, arriving))

    def _on_readable(self, arriving: _Arriving, sock: socket.socket) -> None:
        try:
            chunk = sock.recv(_RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:  # the client went away
            self._forget(arriving)
            self._close(arriving.conn)
            return
        arriving.request.add(chunk)
        self._settle(arriving)

    def _settle(self, arriving: _Arriving) -> bool:
        """Hand a whole request to a thread, or refuse a bad one; False while it is still arriving."""
        status = arriving.request.status()
        if status is None:
            return False
        self._forget(arriving)
        if status:
            self._refuse(arriving, status)
            return True
        conn = arriving.conn
        conn.arrived, conn.request_arrived = bytes(arriving.request.data), True
        self.enqueue_req(conn)
        return True

    def _refuse(self, arriving: _Arriving, answer: bytes) -> None:
        self._forget(arriving)
        with contextlib.suppress(OSError):  # best effort: a full send buffer drops it
            arriving.conn.sock.send(answer)
        self._close(arriving.conn)

    def _forget(self, arriving: _Arriving) -> None:
        if self._arriving.pop(id(arriving.conn), None) is not None:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self.poller.unregister(arriving.conn.sock)

    def _close(self, conn: Any) -> None:
        self.nr_conns -= 1
        conn.close()
