"""Streaming ``multipart/form-data`` bodies laid out as TF.js's ``FormData`` sends them."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

CHUNK_BYTES = 1 << 20
Progress = Callable[[int, int | None], None]


@dataclass(frozen=True, slots=True)
class Part:
    """One part: a name (also its filename) and its bytes, from memory, a file or an iterator."""

    name: str
    source: bytes | Path | Iterable[bytes]
    content_type: str = "application/octet-stream"

    @property
    def size(self) -> int | None:
        if isinstance(self.source, bytes):
            return len(self.source)
        if isinstance(self.source, Path):
            return self.source.stat().st_size
        return None

    def chunks(self) -> Iterator[bytes]:
        if isinstance(self.source, bytes):
            yield self.source
        elif isinstance(self.source, Path):
            with self.source.open("rb") as handle:
                while chunk := handle.read(CHUNK_BYTES):
                    yield chunk
        else:
            yield from self.source


@dataclass(slots=True)
class MultipartBody:
    """The body's headers and its bytes; ``length`` is None when a part's size is unknown."""

    content_type: str
    length: int | None
    parts: list[Part]
    boundary: str

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": self.content_type}
        if self.length is not None:
            headers["Content-Length"] = str(self.length)
        return headers

    def stream(self, progress: Progress | None = None) -> Iterator[bytes]:
        sent = 0
        for part in self.parts:
            yield _part_head(part, self.boundary)
            for chunk in part.chunks():
                sent += len(chunk)
                if progress:
                    progress(sent, self.payload_size)
                yield chunk
            yield b"\r\n"
        yield f"--{self.boundary}--\r\n".encode()

    @property
    def payload_size(self) -> int | None:
        sizes = [part.size for part in self.parts]
        return None if None in sizes else sum(size or 0 for size in sizes)


def multipart_body(parts: list[Part]) -> MultipartBody:
    boundary = f"----modelshelf-{secrets.token_hex(12)}"
    sizes = [part.size for part in parts]
    length = None
    if None not in sizes:
        framing = sum(len(_part_head(part, boundary)) + 2 for part in parts)
        length = framing + sum(size or 0 for size in sizes) + len(f"--{boundary}--\r\n")
    return MultipartBody(f"multipart/form-data; boundary={boundary}", length, parts, boundary)


def _part_head(part: Part, boundary: str) -> bytes:
    name = part.name.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
    return (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}"\r\n'
        f"Content-Type: {part.content_type}\r\n\r\n"
    ).encode()
