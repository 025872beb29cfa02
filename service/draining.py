"""A refused upload is read to its end before the refusal is sent, wherever it was refused.

Node's fetch (and so tf.io.http in Node) reports EPIPE instead of the answer when the server
answers before reading the body. So any error answer to a request whose body has not ended
waits until the rest is read and dropped: up to ``DRAIN_LIMIT`` bytes, or none when the
Content-Length says more than that is left (the connection then closes after the answer).
Nothing was stored either way: the refusal came first.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DRAIN_LIMIT = 64 << 20


class DrainRefusedUploadsMiddleware:
    def __init__(self, app: ASGIApp, limit: int = DRAIN_LIMIT) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = _BodyProgress(receive, _declared_length(scope))

        async def draining_send(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] >= 400:
                await body.drain(self.limit)
            await send(message)

        await self.app(scope, body.receive, draining_send)


class _BodyProgress:
    """``receive``, counting the body bytes the app has read and noticing the body's end."""

    def __init__(self, receive: Receive, declared: int | None) -> None:
        self._receive = receive
        self._declared = declared
        self.received = 0
        self.ended = False

    async def receive(self) -> Message:
        message = await self._receive()
        self._note(message)
        return message

    def _note(self, message: Message) -> None:
        if message["type"] != "http.request":
            self.ended = True
            return
        self.received += len(message.get("body", b""))
        self.ended = not message.get("more_body", False)

    async def drain(self, limit: int) -> None:
        if self.ended or (self._declared is not None and self._declared - self.received > limit):
            return
        start = self.received
        try:
            while not self.ended and self.received - start <= limit:
                await self.receive()
        except Exception:  # a stalled or broken body: the answer matters more
            return


def _declared_length(scope: Scope) -> int | None:
    value = Headers(scope=scope).get("content-length")
    return int(value) if value and value.isdigit() else None
