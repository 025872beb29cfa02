"""A request-head timeout for uvicorn's HTTP/1.1 servers, which have none of their own
(issue 8, item 6).

A slowloris client holds a connection by sending its request head a byte at a time, and any
byte cancels uvicorn's keep-alive timer. These protocols arm one deadline when a connection
opens and when the first byte of a later request arrives, drop it once the parser has a
whole request head, and on expiry answer 408 (when part of a head arrived) and close the
connection. Between requests, an idle connection is uvicorn's keep-alive timeout's to close:
it may be longer than the head's deadline (behind a load balancer, it should be). The deadline is
the same on both of uvicorn's parsers: httptools (the default, see bench/README.md) and h11.
"""

from __future__ import annotations

import asyncio
import json
from typing import ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from modelshelf.schemas.errors import ErrorCode
from modelshelf.service.settings import HttpParser

TIMEOUT_CODE = ErrorCode.REQUEST_TIMEOUT


class _HeadDeadline(asyncio.Protocol):
    """The deadline, shared by both protocols: arm, disarm when a cycle starts, expire.

    Mixed in before a uvicorn protocol, whose methods ``super()`` reaches.
    """

    header_timeout_seconds: ClassVar[float] = 10.0
    _header_timer: asyncio.TimerHandle | None = None
    _head_bytes_seen = False  # did any byte arrive while the deadline ran?

    # What the uvicorn protocol the class is mixed into provides.
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport

    def _serving(self) -> bool:
        """Whether a request's cycle has started and its response not yet ended."""
        raise NotImplementedError

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._note_bytes(data)
        super().data_received(data)

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._head_bytes_seen = False
        self._header_timer = self.loop.call_later(
            self.header_timeout_seconds, self._header_timeout_expired
        )

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _note_bytes(self, data: bytes) -> None:
        """Bytes arrived: between requests, the first byte of a head starts its deadline."""
        if not data or self._serving():
            return
        if self._header_timer is None:
            self._arm_header_timer()
        self._head_bytes_seen = True

    def _header_timeout_expired(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        if self._serving():
            return  # a request is being served: the head did arrive
        if self._head_bytes_seen:
            self._send_timeout_response()
        self.transport.close()

    def _send_timeout_response(self) -> None:
        body = json.dumps({"code": TIMEOUT_CODE.value, "message": head_timeout_message(self)})
        status = TIMEOUT_CODE.status
        head = (
            f"HTTP/1.1 {status} Request Timeout\r\n"
            f"content-type: application/json\r\n"
            f"content-length: {len(body)}\r\n"
            f"connection: close\r\n\r\n"
        )
        self.transport.write(head.encode() + body.encode())


class HeaderTimeoutProtocol(_HeadDeadline, H11Protocol):
    """uvicorn's H11Protocol with a deadline on each request head."""

    def _serving(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle:  # a whole request head arrived and its cycle started
            self._cancel_header_timer()

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        self._cancel_header_timer()
        super().handle_websocket_upgrade(event)


class HeaderTimeoutHttpToolsProtocol(_HeadDeadline, HttpToolsProtocol):
    """uvicorn's HttpToolsProtocol with a deadline on each request head."""

    def _serving(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def on_headers_complete(self) -> None:
        self._cancel_header_timer()
        super().on_headers_complete()


def head_timeout_message(protocol: _HeadDeadline) -> str:
    return (
        f"the request head did not arrive within {protocol.header_timeout_seconds:g} s; "
        f"send it without pauses or raise MODELSHELF_HEADER_TIMEOUT_SECONDS"
    )


Protocol = type[HeaderTimeoutProtocol] | type[HeaderTimeoutHttpToolsProtocol]


def protocol_class(parser: HttpParser) -> Protocol:
    """uvicorn's protocol for ``parser``, with the deadline."""
    return HeaderTimeoutHttpToolsProtocol if parser == "httptools" else HeaderTimeoutProtocol


def header_timeout_protocol(seconds: float, parser: HttpParser = "httptools") -> Protocol:
    """The protocol class to pass as uvicorn's ``http=``, with its deadline set."""
    base = protocol_class(parser)
    return type(f"Configured{base.__name__}", (base,), {"header_timeout_seconds": seconds})
