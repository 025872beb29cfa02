"""What loads hold while many run at once (issue 12, item 5).

The backends' own chunks are in the contract suite; here: SQLite's memory per open stream,
and the body messages the service hands the ASGI server while many loads are mid-way.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelshelf.backends import open_backend
from modelshelf.backends.protocol import STREAM_CHUNK_BYTES
from modelshelf.backends.readshares import DEFAULT_READ_BUDGET_BYTES
from modelshelf.service.app import create_app
from modelshelf.service.settings import Settings
from tests.modelfactory import http_saved
from tests.support.formdata import form_body
from tests.test_backend_contract import (
    STREAMS_AT_ONCE,
    chunked,
    streams_past_their_first_chunk,
)

MIB = 1 << 20
BOUNDARY = "----read-memory"
LOADS_AT_ONCE = 24
READER_BYTES = 256 << 10  # what one open SQLite stream may hold in SQLite's own memory


def sqlite_memory_used() -> Callable[[], int] | None:
    """SQLite's ``sqlite3_memory_used`` of the library sqlite3 runs on, if it is a shared one."""
    maps = Path("/proc/self/maps")
    if not maps.exists():
        return None
    libraries = {line.split()[-1] for line in maps.read_text().splitlines() if "libsqlite3" in line}
    if len(libraries) != 1:  # built into _sqlite3, or not loaded: nothing to ask
        return None
    library = ctypes.CDLL(libraries.pop())
    library.sqlite3_memory_used.restype = ctypes.c_int64
    used: Callable[[], int] = library.sqlite3_memory_used
    return used


async def test_open_sqlite_streams_hold_small_page_caches(tmp_path: Path) -> None:
    used = sqlite_memory_used()
    if used is None:
        pytest.skip("SQLite is not a shared library here: its memory cannot be asked")
    backend = open_backend(f"sqlite://{tmp_path / 'store.sqlite'}")
    try:
        await backend.put("value", chunked(os.urandom(4 * MIB), MIB))
        before = used()
        streams = await streams_past_their_first_chunk(backend, "value")
        for stream in streams:
            await anext(stream.chunks)
        held = used() - before
        for stream in streams:
            await stream.aclose()
    finally:
        await backend.close()
    assert held <= STREAMS_AT_ONCE * READER_BYTES


class HeldInStep:
    """The app, its responses in lock-step over their first body messages.

    Each response waits at each of its first ``steps`` body messages until ``count``
    responses have sent that one: like that many slow clients all mid-download at once.
    Records every body message's size.
    """

    def __init__(self, app: ASGIApp, count: int, steps: int = 2) -> None:
        self.app = app
        self.count = count
        self.sizes: list[list[int]] = []
        self._reached = [asyncio.Event() for _ in range(steps)]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sizes: list[int] = []
        self.sizes.append(sizes)

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.body":
                sizes.append(len(message.get("body", b"")))
                await self._step(len(sizes) - 1)
            await send(message)

        await self.app(scope, receive, recording_send)

    async def _step(self, index: int) -> None:
        if index >= len(self._reached):
            return
        if sum(1 for sizes in self.sizes if len(sizes) > index) == self.count:
            self._reached[index].set()
        await self._reached[index].wait()


async def test_loads_at_once_hand_the_server_shared_chunks(backend_url: str) -> None:
    """Each body message of a load mid-way among many is its share, not a full chunk."""
    weights = os.urandom(3 * MIB)
    model = http_saved([{"name": "w", "shape": [len(weights) // 4], "dtype": "float32"}], weights)
    app = create_app(Settings(stores={"indexeddb": backend_url}))
    async with app.router.lifespan_context(app):
        url = await saved_weight_url(app, model.model_json, weights)
        held = HeldInStep(app, LOADS_AT_ONCE)
        async with client_of(held) as client:
            loads = await asyncio.gather(*(client.get(url) for _ in range(LOADS_AT_ONCE)))
    assert all(load.status_code == 200 and load.content == weights for load in loads)
    seconds = [sizes[1] for sizes in held.sizes]  # each read while every load was mid-way
    share = DEFAULT_READ_BUDGET_BYTES // LOADS_AT_ONCE
    assert 0 < max(seconds) <= share < STREAM_CHUNK_BYTES
    assert max(size for sizes in held.sizes for size in sizes) <= STREAM_CHUNK_BYTES


async def saved_weight_url(app: ASGIApp, model_json: bytes, weights: bytes) -> str:
    """Save the model over HTTP; the weight file's URL, as TF.js resolves it."""
    body = form_body([("model.json", model_json), ("model.weights.bin", weights)], BOUNDARY)
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    async with client_of(app) as client:
        saved = await client.post("/v1/models/indexeddb/big", content=body, headers=headers)
        assert saved.status_code == 201, saved.text
        load_url = saved.json()["loadUrl"]
        served = json.loads((await client.get(load_url)).content)
    return urljoin(load_url, served["weightsManifest"][0]["paths"][0])


def client_of(app: ASGIApp) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1")
