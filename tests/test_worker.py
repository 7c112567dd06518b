"""The server worker's reading of whole requests before a thread gets them."""

from __future__ import annotations

import pytest

from feedhub.limits import MAX_REQUEST_BODY_BYTES, MAX_REQUEST_HEAD_BYTES
from feedhub.worker import (
    BAD_REQUEST,
    BODY_TOO_LARGE,
    HEAD_TOO_LARGE,
    LENGTH_REQUIRED,
    ArrivingRequest,
    request_status,
)


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\n",  # pipelined: the first is whole
        b"POST /websub HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
        b"POST / HTTP/1.1\r\ncontent-length:  0 \r\n\r\n",
    ],
)
def test_whole_requests_go_to_a_thread(data: bytes) -> None:
    assert request_status(data) == b""


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"GET / HTTP/1.1\r\nHost:",
        b"GET / HTTP/1.1\r\nHost: x\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhel",
    ],
)
def test_partial_requests_wait(data: bytes) -> None:
    assert request_status(data) is None


@pytest.mark.parametrize(
    ("data", "answer"),
    [
        (b"GET / HTTP/1.1\r\nX: " + b"a" * MAX_REQUEST_HEAD_BYTES, HEAD_TOO_LARGE),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * MAX_REQUEST_HEAD_BYTES + b"\r\n\r\n", HEAD_TOO_LARGE),
        (f"POST / HTTP/1.1\r\nContent-Length: {MAX_REQUEST_BODY_BYTES + 1}\r\n\r\n".encode(), BODY_TOO_LARGE),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello", LENGTH_REQUIRED),
        (b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", BAD_REQUEST),  # smuggling
        (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", BAD_REQUEST),
        (b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", BAD_REQUEST),
    ],
)
def test_bad_requests_are_refused_at_once(data: bytes, answer: bytes) -> None:
    assert request_status(data) == answer


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /websub HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
        b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: " + b"a" * MAX_REQUEST_HEAD_BYTES,
    ],
)
def test_a_request_sent_byte_by_byte_is_judged_as_if_sent_at_once(data: bytes) -> None:
    """The head's end is found across chunks (its four bytes split anywhere), and the head is
    judged once: what a slow client sends gets the same answer as a fast one."""
    request = ArrivingRequest()
    answers = []
    for byte in data:
        request.add(bytes([byte]))
        answers.append(request.status())
    settled = [index for index, answer in enumerate(answers) if answer is not None]
    assert answers[-1] == request_status(data)
    assert settled[0] == len(data) - 1 or answers[-1] == HEAD_TOO_LARGE
