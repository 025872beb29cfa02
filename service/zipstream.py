"""A streamed, uncompressed (STORED) zip archive whose size is known before the first byte.

zipstream-ng writes it: given each member's size, a ``sized`` archive knows its length up
front, and each CRC-32 goes in a data descriptor after the member's bytes, with ZIP64
records where a size or offset needs them. zipstream-ng is a blocking iterator over
blocking iterables, while the members here are async streams from the backends. Rather than
hop to a worker thread for every chunk (a third slower, bench/README.md), the archive is
driven on the event loop: before each step, the member being written gets its next chunk
fetched, and zipstream-ng takes it from there. Nothing is buffered beyond one chunk.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterator
from dataclasses import dataclass

from zipstream import ZipStream


@dataclass(slots=True)
class ZipEntry:
    """One member: its name, exact size, and its bytes (an async stream is consumed once)."""

    name: str
    size: int
    chunks: bytes | AsyncIterable[bytes]


class ZipArchive:
    """``len(archive)`` for the Content-Length, then ``async for chunk in archive``."""

    def __init__(self, entries: list[ZipEntry]) -> None:
        self._zip = ZipStream(sized=True)
        self._members: list[_Prefetched] = []
        for entry in entries:
            if isinstance(entry.chunks, bytes):
                self._zip.add(entry.chunks, entry.name)
                continue
            member = _Prefetched(aiter(entry.chunks))
            self._members.append(member)
            self._zip.add(member, entry.name, size=entry.size)

    def __len__(self) -> int:
        return len(self._zip)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        archive = iter(self._zip)
        try:
            while True:
                await self._prefetch()
                chunk = next(archive, None)
                if chunk is None:
                    return
                yield chunk
        finally:
            archive.close()
            for member in self._members:  # a client that left: close the backend streams now
                await member.close()

    async def _prefetch(self) -> None:
        """Give the first member not yet written its next chunk, unless it has one waiting."""
        for member in self._members:
            if not member.finished:
                await member.fetch()
                return


class _Prefetched(Iterator[bytes]):
    """A member's async stream as the blocking iterable zipstream-ng reads, one chunk ahead.

    zipstream-ng takes one chunk per archive step, so the chunk fetched before the step is
    the one it takes; reading a chunk that was not fetched is a bug, and says so.
    """

    def __init__(self, source: AsyncIterator[bytes]) -> None:
        self._source = source
        self._waiting: bytes | None = None
        self._ended = False
        self.finished = False

    async def fetch(self) -> None:
        if self._waiting is None and not self._ended:
            self._waiting = await anext(self._source, None)
            self._ended = self._waiting is None

    def __next__(self) -> bytes:
        chunk, self._waiting = self._waiting, None
        if chunk is not None:
            return chunk
        if self._ended:
            self.finished = True
            raise StopIteration
        raise RuntimeError("zipstream-ng read a member's chunk before it was fetched")

    async def close(self) -> None:
        if (close := getattr(self._source, "aclose", None)) is not None:
            await close()
