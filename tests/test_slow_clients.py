"""Slow clients are cut off, through a real socket to a real uvicorn (issue 8, item 6).

The timeouts are one second here so that the whole file runs in a few seconds.
"""

from __future__ import annotations

import socket
import sqlite3
import time
from collections.abc import Iterator
from contextlib import ExitStack, closing, suppress
from pathlib import Path

import httpx
import pytest

from modelshelf.service.settings import Settings
from tests.modelfactory import http_saved
from tests.support.live_server import live_server
from tests.support.rawhttp import address, read_response, wait_closed

HEAD_TIMEOUT = 1.0
BODY_IDLE_TIMEOUT = 1.0
KEEP_ALIVE = 3  # longer than the head's deadline, as behind a load balancer
SLACK = 1.5  # scheduling on a shared, loaded machine
SLOWLORIS_CONNECTIONS = 200
BYTE_INTERVAL = 0.2  # a head of ~70 bytes then takes 14 s: it never completes in time
BOUNDARY = "SlowBoundary"


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("slow")


@pytest.fixture(scope="module", params=["httptools", "h11"])
def server(store_dir: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """The server on each of uvicorn's parsers: both must cut slow clients off."""
    settings = Settings(
        http_parser=request.param,
        stores={
            "file": f"file://{store_dir / 'files'}",
            "indexeddb": f"sqlite://{store_dir / 'db.sqlite'}",
        },
        header_timeout_seconds=HEAD_TIMEOUT,
        body_idle_timeout_seconds=BODY_IDLE_TIMEOUT,
        keep_alive_timeout_seconds=KEEP_ALIVE,
    )
    with live_server(settings) as url:
        yield url


def test_slowloris_heads_are_all_cut_off_while_healthz_answers(server: str) -> None:
    head = slow_head(server)
    closed_after: dict[socket.socket, float] = {}
    healthz_seconds: list[float] = []
    with ExitStack() as stack:
        clients = [
            stack.enter_context(socket.create_connection(address(server)))
            for _ in range(SLOWLORIS_CONNECTIONS)
        ]
        received = dict.fromkeys(clients, b"")
        opened = time.monotonic()
        deadline = opened + HEAD_TIMEOUT + SLACK
        for sent in range(len(head)):
            if len(closed_after) == len(clients) or time.monotonic() > deadline:
                break
            for client in [client for client in clients if client not in closed_after]:
                if _read_until_blocked(client, received):
                    with suppress(BrokenPipeError, ConnectionResetError):
                        client.send(head[sent : sent + 1])  # if closed: seen on the next read
                else:
                    closed_after[client] = time.monotonic() - opened
            healthz_seconds.append(_timed_healthz(server))
            time.sleep(BYTE_INTERVAL)
    assert len(closed_after) == len(clients), f"{len(clients) - len(closed_after)} still open"
    assert min(closed_after.values()) >= HEAD_TIMEOUT * 0.9
    assert max(closed_after.values()) <= HEAD_TIMEOUT + SLACK
    assert max(healthz_seconds) < 0.5
    timed_out = [data for data in received.values() if data.startswith(b"HTTP/1.1 408 ")]
    assert len(timed_out) >= len(clients) * 0.9  # a few may lose the 408 to a reset


def test_a_connection_that_sends_nothing_is_closed(server: str) -> None:
    with socket.create_connection(address(server)) as client:
        seconds, received = wait_closed(client, HEAD_TIMEOUT + SLACK)
    assert seconds >= HEAD_TIMEOUT * 0.9
    assert received == b""  # nothing was asked: closed without an answer


def test_a_partial_head_after_a_response_gets_408_request_timeout(server: str) -> None:
    with socket.create_connection(address(server)) as client:
        client.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert read_response(client, SLACK).status == 200
        client.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        response = read_response(client, HEAD_TIMEOUT + SLACK)
        wait_closed(client, SLACK)
    assert response.status == 408
    assert response.headers["connection"] == "close"
    assert response.json()["code"] == "request_timeout"
    assert "MODELSHELF_HEADER_TIMEOUT_SECONDS" in response.json()["message"]


def test_an_idle_keep_alive_connection_lasts_the_keep_alive_timeout_not_the_heads(
    server: str,
) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    with socket.create_connection(address(server)) as client:
        client.sendall(head)
        assert read_response(client, SLACK).status == 200
        time.sleep(HEAD_TIMEOUT + SLACK)  # past the head's deadline, within the keep-alive
        client.sendall(head)
        assert read_response(client, SLACK).status == 200
        seconds, received = wait_closed(client, KEEP_ALIVE + SLACK)
    assert seconds >= KEEP_ALIVE * 0.9 and received == b""


def test_keep_alive_client_with_slow_but_timely_heads_is_served(server: str) -> None:
    host, _ = address(server)
    head = f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    started = time.monotonic()
    with socket.create_connection(address(server)) as client:
        for _ in range(3):
            time.sleep(HEAD_TIMEOUT / 4)  # idle, then a head over half the deadline: 3/4 in all
            for piece in (head[:10], head[10:20]):
                client.sendall(piece)
                time.sleep(HEAD_TIMEOUT / 4)
            client.sendall(head[20:])
            assert read_response(client, SLACK).status == 200
    assert time.monotonic() - started > 2 * HEAD_TIMEOUT  # one connection, several deadlines


@pytest.mark.parametrize("store", ["file", "indexeddb"])
def test_a_stalled_upload_gets_408_and_stores_nothing(
    server: str, store_dir: Path, store: str
) -> None:
    name = "slow-model"
    declared, start = _upload_start(weight_bytes=1 << 20)
    with socket.create_connection(address(server)) as client:
        client.sendall(_save_head(server, store, name, declared) + start + b"\0" * (64 << 10))
        stalled = time.monotonic()
        response = read_response(client, BODY_IDLE_TIMEOUT + SLACK)
        answered_after = time.monotonic() - stalled
        wait_closed(client, SLACK)
    assert response.status == 408, response.body
    assert response.json()["code"] == "request_timeout"
    assert "MODELSHELF_BODY_IDLE_TIMEOUT_SECONDS" in response.json()["message"]
    assert response.headers["access-control-allow-origin"] == "*"
    assert answered_after >= BODY_IDLE_TIMEOUT * 0.9
    assert httpx.get(f"{server}/v1/models/{store}/{name}").status_code == 404
    assert f"{store}://{name}" not in httpx.get(f"{server}/v1/models/{store}").json()
    assert _stored_under(store_dir, store, name) == []


def test_an_upload_with_short_pauses_is_saved(server: str) -> None:
    declared, start = _upload_start(weight_bytes=4 << 10)
    rest = b"\0" * (4 << 10) + f"\r\n--{BOUNDARY}--\r\n".encode()
    started = time.monotonic()
    with socket.create_connection(address(server)) as client:
        client.sendall(_save_head(server, "file", "paced-model", declared))
        for piece in (start, rest[:1024], rest[1024:2048], rest[2048:]):
            time.sleep(BODY_IDLE_TIMEOUT / 2)
            client.sendall(piece)
        response = read_response(client, SLACK)
    assert response.status == 201, response.body
    assert time.monotonic() - started > BODY_IDLE_TIMEOUT  # paused longer in total than one gap


def slow_head(server: str) -> bytes:
    host, _ = address(server)
    return f"GET /healthz HTTP/1.1\r\nHost: {host}\r\nUser-Agent: slowloris\r\n\r\n".encode()


def _read_until_blocked(client: socket.socket, received: dict[socket.socket, bytes]) -> bool:
    """Reads what the server sent; False once it has closed the connection."""
    client.setblocking(False)
    while True:
        try:
            chunk = client.recv(65536)
        except BlockingIOError:
            return True
        except ConnectionResetError:
            return False
        if not chunk:
            return False
        received[client] += chunk


def _timed_healthz(server: str) -> float:
    started = time.monotonic()
    assert httpx.get(f"{server}/healthz", timeout=5).status_code == 200
    return time.monotonic() - started


def _upload_start(weight_bytes: int) -> tuple[int, bytes]:
    """The declared Content-Length of a one-shard save, and its body up to the weight bytes."""
    model = http_saved([{"name": "w", "shape": [weight_bytes // 4], "dtype": "float32"}], b"")
    start = _part_head("model.json") + model.model_json + b"\r\n" + _part_head("model.weights.bin")
    return len(start) + weight_bytes + len(f"\r\n--{BOUNDARY}--\r\n"), start


def _part_head(name: str) -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}"\r\n\r\n'
    ).encode()


def _save_head(server: str, store: str, name: str, content_length: int) -> bytes:
    host, _ = address(server)
    return (
        f"POST /v1/models/{store}/{name} HTTP/1.1\r\nHost: {host}\r\nOrigin: http://app.test\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {content_length}\r\n\r\n"
    ).encode()


def _stored_under(store_dir: Path, store: str, name: str) -> list[str]:
    """Files and folders the backend holds for the model ``name``: none, after a failed save."""
    if store == "file":
        root = store_dir / "files"
        folders = [root / name, root / "~models" / name]
        return [str(folder) for folder in folders if folder.exists()]
    with closing(sqlite3.connect(store_dir / "db.sqlite")) as db:
        rows = db.execute("SELECT key FROM objects WHERE key LIKE ?", (f"%{name}%",))
        return [key for (key,) in rows]
