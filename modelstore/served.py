"""model.json as loaders get it, stored once per version and streamed on every load.

A save writes ``~models/NAME/~VID/served.json`` (weight paths rewritten to ``~v/VID/``)
next to the original, so a load streams stored bytes instead of parsing and re-writing
the document. Versions saved before that file existed get it computed on the fly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass

import msgspec

from modelshelf.backends.errors import NotFoundError
from modelshelf.backends.protocol import STREAM_CHUNK_BYTES, Backend, ObjectInfo, ObjectStream

Part = bytes | msgspec.Raw


@dataclass(frozen=True, slots=True)
class ServedModelJson:
    """The served document as parts to concatenate: new bytes and slices of the upload."""

    parts: list[Part]

    @property
    def size(self) -> int:
        return sum(len(memoryview(part)) for part in self.parts)

    def chunks(self) -> Iterator[bytes]:
        """The document in chunks a stream may hold (STREAM_CHUNK_BYTES): no part copied whole."""
        for part in self.parts:
            view = memoryview(part)
            for start in range(0, len(view), STREAM_CHUNK_BYTES):
                yield bytes(view[start : start + STREAM_CHUNK_BYTES])


async def store_served(backend: Backend, key: str, served: ServedModelJson) -> ObjectInfo:
    return await backend.put(key, _async_chunks(served))


async def open_served(
    backend: Backend, key: str, compute: Callable[[], Awaitable[ServedModelJson]]
) -> ObjectStream:
    """Open the stored served.json at ``key``, or serve ``compute()`` for older versions."""
    try:
        return await backend.get(key)
    except NotFoundError:
        pass
    served = await compute()
    return ObjectStream(ObjectInfo(key, served.size, etag=""), _async_chunks(served))


def held_stream(key: str, served: bytes) -> ObjectStream:
    """A served model.json held in memory, as the stream a backend read would give."""
    return ObjectStream(ObjectInfo(key, len(served), etag=""), _held(served))


async def _held(served: bytes) -> AsyncIterator[bytes]:
    yield served


async def _async_chunks(served: ServedModelJson) -> AsyncIterator[bytes]:
    for chunk in served.chunks():
        yield chunk
