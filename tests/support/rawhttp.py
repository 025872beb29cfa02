"""HTTP/1.1 by hand over a raw socket, for clients that misbehave on purpose."""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass
from typing import Any


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def address(base_url: str) -> tuple[str, int]:
    host, port = base_url.removeprefix("http://").split(":")
    return host, int(port)


def read_response(conn: socket.socket, timeout: float) -> RawResponse:
    """One response with a Content-Length; raises TimeoutError if it is not whole in time."""
    deadline = time.monotonic() + timeout
    data = b""
    while b"\r\n\r\n" not in data:
        data += _recv_some(conn, deadline)
    head, body = data.split(b"\r\n\r\n", 1)
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, value in (ln.split(":", 1) for ln in lines)}
    while len(body) < int(headers.get("content-length", "0")):
        body += _recv_some(conn, deadline)
    return RawResponse(int(status_line.split()[1]), headers, body)


def wait_closed(conn: socket.socket, timeout: float) -> tuple[float, bytes]:
    """Seconds until the server closed ``conn``, and what it sent; TimeoutError if it did not."""
    started = time.monotonic()
    deadline = started + timeout
    received = b""
    while chunk := _recv_some(conn, deadline, eof_ok=True):
        received += chunk
    return time.monotonic() - started, received


def _recv_some(conn: socket.socket, deadline: float, *, eof_ok: bool = False) -> bytes:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the server neither answered nor closed the connection in time")
    conn.settimeout(left)
    try:
        chunk = conn.recv(65536)
    except ConnectionResetError:
        chunk = b""
    except TimeoutError as error:
        raise TimeoutError("the server neither answered nor closed the connection") from error
    if not chunk and not eof_ok:
        raise ConnectionError("the server closed the connection mid-response")
    return chunk
