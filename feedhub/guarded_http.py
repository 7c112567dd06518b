"""HTTP sessions whose connections obey the address policy, and the reasons their failures give.

Used for every request feedhub makes by itself: upstream feeds and their redirects, WebSub
callbacks and hubs. A guarded session resolves each host itself and connects only to a public
address, so the policy holds for the address connected to, whatever DNS answers next time.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from feedhub.addresses import AddressRefused, refusal
from feedhub.errors import FeedhubError

_CHUNK = 16 * 1024  # small reads bound what one decompression step can produce


class ReadRefused(FeedhubError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def new_session(user_agent: str, guarded: bool) -> requests.Session:
    """A session that takes nothing from the environment (no proxies, no .netrc); a guarded
    one connects to public addresses only. Not thread-safe: one per thread."""
    session = requests.Session()
    session.headers["User-Agent"] = user_agent
    session.trust_env = False
    if guarded:
        session.mount("http://", _PublicOnlyAdapter())
        session.mount("https://", _PublicOnlyAdapter())
    return session


def refused(exc: BaseException) -> AddressRefused | None:
    """The address policy's refusal somewhere under a connection error, if that was the cause."""
    return next((error for error in _chain(exc) if isinstance(error, AddressRefused)), None)


def root_cause(exc: BaseException) -> str:
    """The innermost error, which names the actual problem (refused, unknown host, reset)."""
    *_, innermost = _chain(exc)
    return str(innermost) or type(innermost).__name__


def failure_reason(exc: requests.RequestException, timeout: float, allowing_key: str) -> str:
    """Why a request failed, as an operator reads it; `allowing_key` names the setting that
    would allow an address the policy refused."""
    if isinstance(exc, requests.Timeout):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, requests.ConnectionError):
        refusal_found = refused(exc)
        if refusal_found is not None:
            return f"refused: {refusal_found} ({allowing_key}: true allows it)"
        return f"cannot connect: {root_cause(exc)}"
    return f"request failed: {root_cause(exc)}"


def read_capped(response: requests.Response, max_bytes: int, deadline: float) -> bytes:
    """The decompressed body (of a streamed response), refused as soon as it passes the cap or
    the deadline (time.monotonic). read1 returns what one read of the socket brings, so a server
    that sends a byte at a time cannot keep a read going past the deadline."""
    chunks: list[bytes] = []
    size = 0
    while True:
        try:
            chunk = response.raw.read1(_CHUNK, decode_content=True)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ReadRefused(f"download failed: {root_cause(exc)}") from None
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > max_bytes:
            raise ReadRefused(f"larger than the {max_bytes:,}-byte limit (after decompression)")
        if time.monotonic() > deadline:
            raise ReadRefused("the server sends too slowly (download took over the time limit)")
        chunks.append(chunk)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """An error and the ones it was raised while handling, outermost first."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__context__


class _PublicOnly:
    """A urllib3 connection that resolves its host itself and connects only to public addresses."""

    _dns_host: str
    port: int
    timeout: Any
    socket_options: Any

    def _new_conn(self) -> socket.socket:
        host = self._dns_host.strip("[]")
        refusals: list[str] = []
        last_error: OSError | None = None
        for family, kind, protocol, _name, address in socket.getaddrinfo(
            host, self.port, 0, socket.SOCK_STREAM
        ):
            ip = str(address[0])
            why = refusal(ip)
            if why:
                refusals.append(f"{ip} is {why}" if ip == host else f"{host} is {ip}, {why}")
                continue
            sock = socket.socket(family, kind, protocol)
            try:
                for option in self.socket_options or ():
                    sock.setsockopt(*option)
                if isinstance(self.timeout, int | float):  # else urllib3's "default" sentinel
                    sock.settimeout(self.timeout)
                sock.connect(address)
            except OSError as exc:
                sock.close()
                last_error = exc
                continue
            return sock
        if last_error is not None:
            raise last_error
        raise AddressRefused("; ".join(dict.fromkeys(refusals)))


class _PublicOnlyHTTPConnection(_PublicOnly, HTTPConnection):
    pass


class _PublicOnlyHTTPSConnection(_PublicOnly, HTTPSConnection):
    pass


class _PublicOnlyHTTPPool(HTTPConnectionPool):
    ConnectionCls = _PublicOnlyHTTPConnection


class _PublicOnlyHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _PublicOnlyHTTPSConnection


class _PublicOnlyAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _PublicOnlyHTTPPool, "https": _PublicOnlyHTTPSPool}
