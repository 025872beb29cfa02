"""The longest pause allowed between two chunks of a request body (issue 8, item 6).

``receive`` gets a deadline per message until the body has ended; after that it is passed
through untouched, because Starlette waits on it for a disconnect during long downloads. A
stalled body raises ``request_timeout`` into the route: a save fails, the model layer discards
what it wrote, and the 408 closes the connection, whose body is now in an unknown state.
Nothing is buffered: each message is handed on as it arrives.
"""

from __future__ import annotations

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelshelf.schemas.errors import ErrorCode
from modelshelf.service.errors import HttpError


class BodyIdleTimeoutMiddleware:
    """Fails a request whose body pauses for longer than ``idle_timeout_seconds``."""

    def __init__(self, app: ASGIApp, idle_timeout_seconds: float) -> None:
        self.app = app
        self.idle_timeout_seconds = idle_timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.app(scope, IdleDeadlineReceive(receive, self.idle_timeout_seconds), send)


class IdleDeadlineReceive:
    """``receive`` with a deadline on each body message; fails at once after a stall."""

    def __init__(self, receive: Receive, seconds: float) -> None:
        self._receive = receive
        self._seconds = seconds
        self._body_ended = False
        self._stalled = False

    async def __call__(self) -> Message:
        if self._body_ended:
            return await self._receive()
        if self._stalled:  # e.g. the route draining the rest: do not wait a second time
            raise body_stalled(self._seconds)
        try:
            with anyio.fail_after(self._seconds):
                message = await self._receive()
        except TimeoutError:
            self._stalled = True
            raise body_stalled(self._seconds) from None
        self._body_ended = message["type"] != "http.request" or not message.get("more_body")
        return message


def body_stalled(seconds: float) -> HttpError:
    return HttpError(
        ErrorCode.REQUEST_TIMEOUT,
        f"the upload stalled for {seconds:g} s; send the body without pauses "
        f"or raise MODELSHELF_BODY_IDLE_TIMEOUT_SECONDS",
        {"Connection": "close"},
    )
