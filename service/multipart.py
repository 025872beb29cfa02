"""Reading a ``multipart/form-data`` save body part by part, as it streams (protocol doc §4).

python-multipart's incremental parser (the one Starlette uses) finds the delimiters; this
module turns its callbacks into parts read in order: ``await next_part()`` gives a part's
headers, ``part_body()`` its bytes as they arrive. The parser is fed one network chunk at a
time and hands back slices of that chunk, so a weight file flows into the backend while at
most one chunk of it is held.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final

from python_multipart import MultipartParser
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import parse_options_header

from modelshelf.schemas.errors import ErrorCode
from modelshelf.service.errors import HttpError

MAX_HEADER_COUNT = 16
MAX_HEADER_LINE_BYTES = 8 * 1024
MAX_BOUNDARY_LINE = 200  # RFC 2046 allows 70 characters; be lenient but bounded
# The parser logs a warning for every malformed body; the client gets that as a 400 already.
PARSER_LOG = logging.getLogger(__name__ + ".parser")
PARSER_LOG.setLevel(logging.ERROR)


class MultipartError(HttpError):
    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.BAD_MULTIPART, message)


@dataclass(slots=True)
class PartHeaders:
    """What the headers of one part say about it."""

    name: str | None
    filename: str | None
    content_type: str | None


class _Marker:
    """Where the parser found the end of a part, or of the body."""


PART_END: Final = _Marker()
BODY_END: Final = _Marker()
Event = PartHeaders | bytes | _Marker  # in the order the parser met them


def boundary_from_content_type(content_type: str) -> bytes | None:
    boundary = parse_options_header(content_type)[1].get(b"boundary")
    return boundary or None


async def sniff_boundary(stream: AsyncIterator[bytes]) -> tuple[bytes, AsyncIterator[bytes]]:
    """Find the boundary from the body's first line ``--BOUNDARY\\r\\n`` (protocol doc §12.10).

    Clients that override ``Content-Type`` lose the boundary parameter; the body still has it.
    """
    head = b""
    async for chunk in stream:
        head += chunk
        if b"\r\n" in head or len(head) > MAX_BOUNDARY_LINE:
            break
    line = head.split(b"\r\n", 1)[0]
    if not line.startswith(b"--") or len(line) < 3 or len(line) > MAX_BOUNDARY_LINE:
        raise MultipartError(
            "the body is not multipart/form-data and its Content-Type names no boundary; "
            "send multipart/form-data with a boundary (do not override Content-Type) or "
            "application/json ModelArtifacts"
        )
    return line[2:].rstrip(b" \t"), _prepend(head, stream)


async def _prepend(head: bytes, stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield head
    async for chunk in stream:
        yield chunk


class MultipartReader:
    """Reads parts in order: ``await next_part()``, then iterate ``part_body()``."""

    def __init__(self, stream: AsyncIterator[bytes], boundary: bytes) -> None:
        if not boundary or len(boundary) > MAX_BOUNDARY_LINE:
            raise MultipartError("the multipart boundary is empty or too long")
        self._stream = stream
        self._events: deque[Event] = deque()
        self._headers = _HeaderCollector(self._events)
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._headers.begin_part,
                "on_header_field": self._headers.add_field,
                "on_header_value": self._headers.add_value,
                "on_header_end": self._headers.end_header,
                "on_headers_finished": self._headers.finish,
                "on_part_data": self._on_data,
                "on_part_end": lambda: self._events.append(PART_END),
                "on_end": lambda: self._events.append(BODY_END),
            },
            max_header_count=MAX_HEADER_COUNT,
            max_header_size=MAX_HEADER_LINE_BYTES,
        )
        self._parser.logger = PARSER_LOG
        self._in_body = False
        self._finished = False

    async def next_part(self) -> PartHeaders | None:
        """Headers of the next part, or None after the closing delimiter."""
        if self._in_body:
            async for _ in self.part_body():
                pass  # the caller skipped the rest of this part
        while not self._finished:
            event = await self._next_event()
            if isinstance(event, PartHeaders):
                self._in_body = True
                return event
            self._finished = event is BODY_END
        return None

    async def part_body(self) -> AsyncIterator[bytes]:
        """The current part's bytes, as they arrive: slices of the network chunks."""
        while self._in_body:
            event = await self._next_event()
            if isinstance(event, bytes):
                yield event
            else:
                self._in_body = False

    async def read_part(self, limit: int, what: str) -> bytes:
        """The current part whole, refusing more than ``limit`` bytes."""
        data = bytearray()
        async for chunk in self.part_body():
            data += chunk
            if len(data) > limit:
                raise HttpError(
                    ErrorCode.PAYLOAD_TOO_LARGE, f"{what} is over its limit of {limit} bytes"
                )
        return bytes(data)

    def _on_data(self, data: bytes, start: int, end: int) -> None:
        # A slice of the whole chunk is the chunk itself: no payload byte is copied.
        self._events.append(data[start:end])

    async def _next_event(self) -> Event:
        while not self._events:
            chunk = await anext(self._stream, None)
            if chunk is None:
                raise MultipartError(self._cut_short())
            try:
                self._parser.write(chunk)
            except MultipartParseError as error:
                raise MultipartError(self._malformed(error)) from None
        return self._events.popleft()

    def _cut_short(self) -> str:
        if not self._headers.parts_seen:
            return "the body holds no part delimited by the boundary its Content-Type names"
        if self._headers.in_headers:
            return "the body ended inside the part headers: the upload was cut short"
        return "the body ended inside a part: the upload was cut short"

    def _malformed(self, error: MultipartParseError) -> str:
        if not self._headers.parts_seen:
            return (
                "the body does not start with the boundary its Content-Type names "
                f"({error}); send the multipart body that goes with that Content-Type"
            )
        if self._headers.in_headers:
            return (
                f"a part's headers are malformed or over the limit of {MAX_HEADER_COUNT} lines "
                f"of {MAX_HEADER_LINE_BYTES} bytes: {error}"
            )
        return f"the multipart body is malformed: {error}"


class _HeaderCollector:
    """Gathers one part's header lines from the parser's callbacks (each bounded in size)."""

    def __init__(self, events: deque[Event]) -> None:
        self._events = events
        self._lines: list[tuple[bytes, bytes]] = []
        self._field = bytearray()
        self._value = bytearray()
        self.parts_seen = 0
        self.in_headers = False

    def begin_part(self) -> None:
        self.parts_seen += 1
        self.in_headers = True
        self._lines.clear()

    def add_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def add_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def end_header(self) -> None:
        self._lines.append((bytes(self._field).lower(), bytes(self._value)))
        self._field.clear()
        self._value.clear()

    def finish(self) -> None:
        self.in_headers = False
        self._events.append(_part_headers(dict(self._lines)))


def _part_headers(fields: dict[bytes, bytes]) -> PartHeaders:
    # Browsers and undici send names as raw UTF-8; parse_options_header reads latin-1.
    params = parse_options_header(fields.get(b"content-disposition", b"").decode("latin-1"))[1]
    content_type = fields.get(b"content-type")
    return PartHeaders(
        _text(params.get(b"name")),
        _text(params.get(b"filename")),
        None if content_type is None else _text(content_type.strip()),
    )


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8", "replace")
