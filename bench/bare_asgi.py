"""The baseline server of service_throughput.py: reads each request body to its end, keeps nothing.

    python -m uvicorn bare_asgi:app --app-dir bench

It answers 201 with ``{"received": BYTES}``, so a save through the real service can be compared
with what uvicorn alone costs on the same settings.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def app(scope: Message, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    received = await _drain_body(receive)
    if received is None:
        return  # the client went away
    body = json.dumps({"received": received}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 201, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _drain_body(receive: Receive) -> int | None:
    received = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        received += len(message.get("body", b""))
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
