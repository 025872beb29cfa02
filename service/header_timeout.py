"""A request-head timeout for uvicorn's h11 server, which has none of its own (issue 8, item 6).

A slowloris client holds a connection by sending its request head a byte at a time, and any
byte cancels uvicorn's keep-alive timer. This protocol arms one deadline when a connection
opens and when a response ends, drops it once h11 has parsed a whole request head, and on
expiry answers 408 (when part of a head arrived) and closes the connection.
"""

from __future__ import annotations

import asyncio
import json
from typing import ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from modelshelf.schemas.errors import ErrorCode

TIMEOUT_CODE = ErrorCode.REQUEST_TIMEOUT


class HeaderTimeoutProtocol(H11Protocol):
    """uvicorn's H11Protocol with a deadline on each request head."""

    header_timeout_seconds: ClassVar[float] = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle:  # a whole request head arrived and its cycle started
            self._cancel_header_timer()

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        self._cancel_header_timer()
        super().handle_websocket_upgrade(event)

    def on_response_complete(self) -> None:
        # Armed first: a pipelined head already buffered is parsed (and disarms it) in super().
        self._arm_header_timer()
        super().on_response_complete()

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(
            self.header_timeout_seconds, self._header_timeout_expired
        )

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout_expired(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being served: the head did arrive
        if self._partial_head_received():
            self.logger.debug("closing a connection: no request head in time")
            self._send_timeout_response()
        self.transport.close()

    def _partial_head_received(self) -> bool:
        waiting = self.conn.our_state is h11.IDLE and self.conn.their_state is h11.IDLE
        return waiting and bool(self.conn.trailing_data[0])

    def _send_timeout_response(self) -> None:
        body = json.dumps(
            {"code": TIMEOUT_CODE.value, "message": head_timeout_message(self)}
        ).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        status = TIMEOUT_CODE.status
        events = (h11.Response(status_code=status, headers=headers), h11.Data(data=body))
        try:
            for event in (*events, h11.EndOfMessage()):
                self.transport.write(self.conn.send(event) or b"")
        except h11.LocalProtocolError:
            pass  # h11 refuses to answer in this state; closing is answer enough


def head_timeout_message(protocol: HeaderTimeoutProtocol) -> str:
    return (
        f"the request head did not arrive within {protocol.header_timeout_seconds:g} s; "
        f"send it without pauses or raise MODELSHELF_HEADER_TIMEOUT_SECONDS"
    )


def header_timeout_protocol(seconds: float) -> type[HeaderTimeoutProtocol]:
    """The protocol class to pass as uvicorn's ``http=``, with its deadline set."""

    class ConfiguredHeaderTimeoutProtocol(HeaderTimeoutProtocol):
        header_timeout_seconds = seconds

    return ConfiguredHeaderTimeoutProtocol
