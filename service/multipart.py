"""An incremental ``multipart/form-data`` reader that pulls from an async byte stream.

Parts are read one after another; a part's body is an async iterator that yields
bytes as they arrive, so a weight file flows into the backend without being held.
Only the bytes of one network chunk plus one delimiter's length are ever buffered.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

from modelshelf.schemas.errors import ErrorCode
from modelshelf.service.errors import HttpError

MAX_HEADER_BYTES = 16 * 1024
MAX_PREAMBLE_BYTES = 64 * 1024
MAX_BOUNDARY_LINE = 200  # RFC 2046 allows 70 characters; be lenient but bounded
_PARAM = re.compile(r';\s*([A-Za-z0-9_.*-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))')
_BOUNDARY = re.compile(r'boundary\s*=\s*(?:"([^"]+)"|([^;\s]+))', re.IGNORECASE)


class MultipartError(HttpError):
    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.BAD_MULTIPART, message)


@dataclass(slots=True)
class PartHeaders:
    """What the headers of one part say about it."""

    name: str | None
    filename: str | None
    content_type: str | None


def boundary_from_content_type(content_type: str) -> bytes | None:
    match = _BOUNDARY.search(content_type)
    if not match:
        return None
    return (match.group(1) or match.group(2)).encode("latin-1")


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
        self._delimiter = b"\r\n--" + boundary
        self._buffer = b"\r\n"  # lets the first delimiter match like every later one
        self._in_body = False
        self._finished = False
        self._started = False

    async def next_part(self) -> PartHeaders | None:
        """Headers of the next part, or None after the closing delimiter."""
        if self._in_body:
            async for _ in self.part_body():
                pass  # the caller skipped the rest of this part
        if self._finished:
            return None
        if not self._started:
            await self._skip_preamble()
            self._started = True
        if await self._after_delimiter_is_end():
            self._finished = True
            return None
        headers = await self._read_headers()
        self._in_body = True
        return headers

    async def part_body(self) -> AsyncIterator[bytes]:
        """The current part's bytes, as they arrive.

        Network chunks are passed on as they are, one chunk late: a chunk is yielded once
        the next one shows that no delimiter straddles the two. No payload byte is copied.
        """
        delimiter = self._delimiter
        keep = len(delimiter) - 1
        while self._in_body:
            found = self._buffer.find(delimiter)
            if found >= 0:
                body, self._buffer = self._buffer[:found], self._buffer[found + len(delimiter) :]
                self._in_body = False
                if body:
                    yield body
                return
            following = await anext(self._stream, None)
            if following is None:
                raise MultipartError("the body ended inside a part: the upload was cut short")
            if len(following) < keep or delimiter in self._buffer[-keep:] + following[:keep]:
                # Rare: the delimiter may straddle the chunks; look at them together.
                self._buffer += following
                continue
            if self._buffer:
                yield self._buffer
            self._buffer = following

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

    async def _fill(self) -> bool:
        chunk = await anext(self._stream, None)
        if chunk is None:
            return False
        self._buffer += chunk
        return True

    async def _skip_preamble(self) -> None:
        while (found := self._buffer.find(self._delimiter)) < 0:
            if len(self._buffer) > MAX_PREAMBLE_BYTES:
                raise MultipartError("no multipart boundary found where the body starts")
            if not await self._fill():
                raise MultipartError(
                    "the body holds no part delimited by the boundary its Content-Type names"
                )
        self._buffer = self._buffer[found + len(self._delimiter) :]

    async def _after_delimiter_is_end(self) -> bool:
        while len(self._buffer) < 2:
            if not await self._fill():
                raise MultipartError("the body ended right after a boundary; it was cut short")
        if self._buffer.startswith(b"--"):
            return True
        line_end = await self._find(b"\r\n", MAX_BOUNDARY_LINE, "boundary line")
        if self._buffer[:line_end].strip(b" \t"):
            raise MultipartError("unexpected bytes after a multipart boundary")
        self._buffer = self._buffer[line_end + 2 :]
        return False

    async def _read_headers(self) -> PartHeaders:
        end = await self._find(b"\r\n\r\n", MAX_HEADER_BYTES, "part headers", allow_empty=True)
        raw, self._buffer = self._buffer[:end], self._buffer[end + 4 :]
        return _parse_headers(raw)

    async def _find(self, needle: bytes, limit: int, what: str, allow_empty: bool = False) -> int:
        if allow_empty and self._buffer.startswith(b"\r\n"):
            # A part with no headers at all: the blank line comes right away.
            self._buffer = b"\r\n" + self._buffer
        while (found := self._buffer.find(needle)) < 0:
            if len(self._buffer) > limit:
                raise MultipartError(f"the {what} are longer than {limit} bytes")
            if not await self._fill():
                raise MultipartError(f"the body ended inside the {what}")
        if found > limit:
            raise MultipartError(f"the {what} are longer than {limit} bytes")
        return found


def _parse_headers(raw: bytes) -> PartHeaders:
    fields: dict[str, str] = {}
    for line in raw.decode("utf-8", "replace").split("\r\n"):
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise MultipartError(f"malformed part header line {line[:80]!r}")
        fields[name.strip().lower()] = value.strip()
    params = _params(fields.get("content-disposition", ""))
    return PartHeaders(params.get("name"), params.get("filename"), fields.get("content-type"))


def _params(header: str) -> dict[str, str]:
    return {
        match.group(1).lower(): _unquote(match.group(2))
        if match.group(2) is not None
        else match.group(3)
        for match in _PARAM.finditer(header)
    }


def _unquote(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)
