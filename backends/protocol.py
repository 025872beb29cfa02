"""The one small interface every storage backend implements.

Backends are dumb async byte stores: they know keys and bytes, never models.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from modelshelf.backends.keys import MAX_KEY_BYTES
from modelshelf.backends.putmodes import PutMode

# The most bytes one chunk of an ObjectStream holds: a lone stream's chunk. Streams read at
# once share a budget and read less each (``readshares.ReadShares``); a backend reads no further
# ahead of its consumer than the chunk it is asked for (issue 12, item 5).
STREAM_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What a backend knows about one stored value."""

    key: str
    size: int
    etag: str


@dataclass(frozen=True, slots=True)
class ListPage:
    """One page of a prefix listing, sorted by key; ``next_cursor`` is None on the last page."""

    items: list[ObjectInfo]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a backend promises, declared rather than sniffed.

    Attributes:
        persistent: values survive closing and reopening the backend.
        shared: several processes (server replicas) may use one store at once.
        local_root: the folder holding the values as plain files, if any.
        prefix_keys: a key may also be the prefix folder of other keys (``a`` and ``a/b``);
            false for file systems, where ``a`` cannot be both a file and a folder.
        max_key_bytes: the longest key (UTF-8) this backend stores, after its own prefix.
        plain_objects: each value is a plain file or object that another server (nginx, a
            CDN, a bucket's website) could serve as it is.
        put_create: ``put(mode=CreateOnly())`` is atomic, across every process sharing it.
        put_replace_if_etag: ``put(mode=ReplaceIfEtag(etag))`` is atomic, likewise.
        sweeps_incomplete: a put killed midway (kill -9, a crash) can leave bytes behind that
            no key points to, and the backend implements ``IncompleteSweeper`` to free them.
    """

    persistent: bool
    shared: bool
    local_root: str | None = None
    prefix_keys: bool = True
    max_key_bytes: int = MAX_KEY_BYTES
    plain_objects: bool = False
    put_create: bool = False
    put_replace_if_etag: bool = False
    sweeps_incomplete: bool = False


@dataclass(frozen=True, slots=True)
class SweptItem:
    """Something a put that never finished left behind, which no key points to.

    Attributes:
        kind: ``staging_blob`` (sqlite), ``multipart_upload`` (s3) or ``temp_file`` (file).
        name: what a person would look for: a temp file's path, the key an upload was for.
        size: the bytes it holds.
    """

    kind: str
    name: str
    size: int


@dataclass(slots=True)
class ObjectStream:
    """A value being read: ``info`` is known before the first byte arrives.

    ``info.size`` is the whole value's size; ``chunks`` hold its bytes ``[start, end)``
    (``end=None``: to the value's end), at most ``STREAM_CHUNK_BYTES`` each (less while other
    streams are read: ``readshares.ReadShares``), each read only when it is asked for.
    ``release`` frees what the read holds (a file, a connection). ``aclose`` calls it even
    when iteration never started, where an async generator's ``finally`` would not run.
    """

    info: ObjectInfo
    chunks: AsyncIterator[bytes]
    release: Callable[[], Awaitable[None]] | None = None
    start: int = 0
    end: int | None = None

    @property
    def length(self) -> int:
        """How many bytes ``chunks`` hold."""
        return (self.info.size if self.end is None else self.end) - self.start

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self.chunks

    async def aclose(self) -> None:
        aclose = getattr(self.chunks, "aclose", None)
        if aclose is not None:
            await aclose()
        if self.release is not None:
            await self.release()


@runtime_checkable
class Backend(Protocol):
    """An async key-value byte store.

    Every method validates its key with ``backends.keys.validate_key`` and raises only
    ``backends.errors.StorageError`` subclasses.
    """

    capabilities: Capabilities

    async def put(self, key: str, chunks: AsyncIterable[bytes], mode: PutMode = None) -> ObjectInfo:
        """Store the bytes of ``chunks`` under ``key``, replacing any value atomically.

        If ``chunks`` raises, the error propagates and nothing of the new value is visible.
        With a ``mode``, raises PreconditionFailedError when the key is not in the state the
        mode requires (checked when the value commits, atomically where the capabilities say
        so).
        """
        ...

    async def get(self, key: str, *, start: int = 0, end: int | None = None) -> ObjectStream:
        """Open ``key`` for reading its bytes ``[start, end)``, by default all of them.

        ``end=None`` reads to the value's end, and an ``end`` past it stops there (see
        ``backends.ranges``). The stream's ``start`` and ``end`` say what it holds; its
        chunks are as large as ``readshares.ReadShares`` allows, read one at a time as asked
        for. Raises
        NotFoundError, or InvalidRangeError for a range that reads nothing, before any byte
        is produced.
        """
        ...

    async def head(self, key: str) -> ObjectInfo:
        """Describe ``key``; raises NotFoundError."""
        ...

    async def delete(self, key: str) -> None:
        """Remove ``key``; raises NotFoundError if it is absent."""
        ...

    async def list(
        self, prefix: str = "", *, start_after: str | None = None, limit: int = 1000
    ) -> ListPage:
        """List keys starting with ``prefix`` in key order, after ``start_after``."""
        ...

    async def close(self) -> None:
        """Release connections and files; the backend is unusable afterwards."""
        ...


class IncompleteSweeper(Protocol):
    """What a backend declaring ``Capabilities.sweeps_incomplete`` implements as well."""

    async def sweep_incomplete(
        self, older_than_seconds: float, *, dry_run: bool
    ) -> list[SweptItem]:
        """Free what puts begun more than ``older_than_seconds`` ago and never finished hold.

        A put still running that long loses its bytes and fails; nothing a key points to is
        ever touched. With ``dry_run``, only lists them.
        """
        ...
