"""``memory://``: the reference backend and test double. Values live in a dict."""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import AsyncIterable, AsyncIterator

from modelshelf.backends.concurrency import CallLimits
from modelshelf.backends.errors import NotFoundError
from modelshelf.backends.keys import validate_key
from modelshelf.backends.protocol import Capabilities, ListPage, ObjectInfo, ObjectStream
from modelshelf.backends.putmodes import PutMode, check_put_mode
from modelshelf.backends.ranges import resolve_range, validate_range
from modelshelf.backends.readshares import ReadShares


class MemoryBackend:
    """A process-local store; everything is lost on close."""

    # One process, one event loop: nothing runs between a conditional check and its write.
    capabilities = Capabilities(
        persistent=False, shared=False, put_create=True, put_replace_if_etag=True
    )

    def __init__(self, read_shares: ReadShares | None = None) -> None:
        self._read_shares = read_shares or ReadShares()
        self._values: dict[str, bytes] = {}
        self._keys: list[str] = []  # sorted, for listing

    async def put(self, key: str, chunks: AsyncIterable[bytes], mode: PutMode = None) -> ObjectInfo:
        validate_key(key)
        value = b"".join([bytes(chunk) async for chunk in chunks])
        # No await from the check to the write: atomic within the one process it lives in.
        current = self._values.get(key)
        check_put_mode(mode, key, None if current is None else self._info(key, current).etag)
        if key not in self._values:
            bisect.insort(self._keys, key)
        self._values[key] = value
        return self._info(key, value)

    async def get(self, key: str, *, start: int = 0, end: int | None = None) -> ObjectStream:
        validate_key(key)
        validate_range(start, end)
        value = self._lookup(key)
        start, end = resolve_range(len(value), start, end)
        chunks = _chunked(memoryview(value)[start:end], self._read_shares)
        return ObjectStream(self._info(key, value), chunks, start=start, end=end)

    async def head(self, key: str) -> ObjectInfo:
        return self._info(key, self._lookup(key))

    async def delete(self, key: str) -> None:
        self._lookup(key)
        del self._values[key]
        self._keys.remove(key)

    async def list(
        self, prefix: str = "", *, start_after: str | None = None, limit: int = 1000
    ) -> ListPage:
        start = bisect.bisect_right(self._keys, start_after) if start_after else 0
        start = max(start, bisect.bisect_left(self._keys, prefix))
        items: list[ObjectInfo] = []
        for key in self._keys[start:]:
            if not key.startswith(prefix) or len(items) == limit:
                break
            items.append(self._info(key, self._values[key]))
        more = len(items) == limit and _has_key_after(self._keys, items, prefix)
        return ListPage(items, items[-1].key if more else None)

    async def close(self) -> None:
        self._values.clear()
        self._keys.clear()

    def _lookup(self, key: str) -> bytes:
        validate_key(key)
        try:
            return self._values[key]
        except KeyError:
            raise NotFoundError(f"no value at key {key!r}") from None

    @staticmethod
    def _info(key: str, value: bytes) -> ObjectInfo:
        return ObjectInfo(key, len(value), hashlib.md5(value, usedforsecurity=False).hexdigest())


def _has_key_after(keys: list[str], items: list[ObjectInfo], prefix: str) -> bool:
    if not items:
        return False
    index = bisect.bisect_right(keys, items[-1].key)
    return index < len(keys) and keys[index].startswith(prefix)


async def _chunked(view: memoryview, shares: ReadShares) -> AsyncIterator[bytes]:
    """Copies of the value's bytes, in the chunks a stream of any backend would get."""
    with shares.stream():
        while view:
            size = shares.chunk_bytes()
            yield bytes(view[:size])
            view = view[size:]


def from_url(body: str, options: dict[str, str], limits: CallLimits | None = None) -> MemoryBackend:
    """``memory://`` takes no path and no options."""
    return MemoryBackend(limits.read_shares if limits else None)
