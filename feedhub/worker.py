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
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from gunicorn.workers.gthread import TConn, ThreadWorker

from feedhub.limits import MAX_REQUEST_BODY_BYTES, MAX_REQUEST_HEAD_BYTES, REQUEST_HEAD_TIMEOUT

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


@dataclass
class _Arriving:
    """A request still arriving on a connection: what came so far, and until when it may come."""

    conn: Any  # gunicorn's TConn
    deadline: float
    data: bytearray = field(default_factory=bytearray)


def request_status(data: bytes | bytearray) -> bytes | None:
    """b"" when ``data`` holds a whole request, None while more must come, else the refusal to send."""
    end = data.find(_HEAD_END)
    if end < 0:
        return HEAD_TOO_LARGE if len(data) > MAX_REQUEST_HEAD_BYTES else None
    if end > MAX_REQUEST_HEAD_BYTES:
        return HEAD_TOO_LARGE
    head = bytes(data[:end])
    if _TRANSFER_ENCODING.search(head):
        return LENGTH_REQUIRED  # a chunked body has no length to wait for; feedhub takes no uploads
    lengths = {match.group(1) for match in _CONTENT_LENGTH.finditer(head)}
    if not lengths:
        return b""
    if len(lengths) > 1 or not all(value.isdigit() and len(value) <= 12 for value in lengths):
        return BAD_REQUEST
    length = int(lengths.pop())
    if length > MAX_REQUEST_BODY_BYTES:
        return BODY_TOO_LARGE
    return b"" if len(data) >= end + len(_HEAD_END) + length else None


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
        arriving = _Arriving(conn, time.monotonic() + REQUEST_HEAD_TIMEOUT, bytearray(data))
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
        arriving.data += chunk
        self._settle(arriving)

    def _settle(self, arriving: _Arriving) -> bool:
        """Hand a whole request to a thread, or refuse a bad one; False while it is still arriving."""
        status = request_status(arriving.data)
        if status is None:
            return False
        self._forget(arriving)
        if status:
            self._refuse(arriving, status)
            return True
        conn = arriving.conn
        conn.arrived, conn.request_arrived = bytes(arriving.data), True
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
