"""The baseline servers of service_throughput.py, on the same uvicorn settings as the service.

    python -m uvicorn bare_asgi:app --app-dir bench

``POST /`` reads the request body to its end and keeps nothing: what uvicorn alone costs.
``POST /write`` also does the least work a durable save needs: sha256 over the body and a
plain file write with fsync (into ``BARE_WRITE_DIR``, deleted afterwards). Both answer 201
with ``{"received": BYTES}``. ``GET`` answers 304 to ``If-None-Match: "bare"`` (else 200
``{}``): the most a revalidation can cost on the server stack alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Awaitable, Callable, MutableMapping
from typing import IO, Any

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Sink = Callable[[bytes], object]


async def app(scope: Message, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["method"] == "GET":
        await _revalidate(scope, send)
        return
    if scope["path"] == "/write":
        received = await _hash_and_write(receive)
    else:
        received = await _drain_body(receive, len)
    if received is None:
        return  # the client went away
    body = json.dumps({"received": received}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 201, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _revalidate(scope: Message, send: Send) -> None:
    """GET: 304 when If-None-Match names ETAG, else 200 with a tiny body: the stack's ceiling."""
    etag = b'"bare"'
    matched = (b"if-none-match", etag) in scope["headers"]
    headers = [(b"etag", etag), (b"content-length", b"0" if matched else b"2")]
    await send(
        {"type": "http.response.start", "status": 304 if matched else 200, "headers": headers}
    )
    await send({"type": "http.response.body", "body": b"" if matched else b"{}"})


async def _hash_and_write(receive: Receive) -> int | None:
    digest = hashlib.sha256()
    with tempfile.NamedTemporaryFile(dir=os.environ.get("BARE_WRITE_DIR")) as file:
        received = await _drain_body(receive, _hashing_writer(digest, file))
        file.flush()
        os.fsync(file.fileno())
    digest.hexdigest()
    return received


def _hashing_writer(digest: Any, file: IO[bytes]) -> Sink:
    def sink(chunk: bytes) -> None:
        digest.update(chunk)
        file.write(chunk)

    return sink


async def _drain_body(receive: Receive, sink: Sink) -> int | None:
    received = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        sink(chunk)
        received += len(chunk)
        if not message.get("more_body", False):
            return received


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
