"""A backend wrapper that counts round trips and fails chosen calls, for model-layer tests."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterable, Callable

from modelshelf.backends import Backend, ListPage, ObjectInfo, ObjectStream, StorageError
from modelshelf.backends.putmodes import PutMode

Failure = Callable[[str, str], StorageError | None]  # (operation, key) -> error to raise


class SpyBackend:
    """Forwards to ``inner``; ``calls`` counts operations, ``fail`` may inject errors."""

    def __init__(self, inner: Backend, fail: Failure | None = None) -> None:
        self.inner = inner
        self.capabilities = inner.capabilities
        self.calls: Counter[str] = Counter()
        self.listed = 0  # keys returned by listings: what a listing costs beyond its call
        self.ranges: list[tuple[int, int | None]] = []  # (start, end) of each get
        self.gets: list[tuple[str, int, int | None]] = []  # (key, start, end) of each get
        self.fail = fail

    def reset(self) -> None:
        self.calls.clear()
        self.listed = 0
        self.ranges.clear()
        self.gets.clear()

    def _enter(self, operation: str, key: str) -> None:
        self.calls[operation] += 1
        error = self.fail(operation, key) if self.fail else None
        if error is not None:
            raise error

    async def put(self, key: str, chunks: AsyncIterable[bytes], mode: PutMode = None) -> ObjectInfo:
        self._enter("put", key)
        return await self.inner.put(key, chunks, mode)

    async def get(self, key: str, *, start: int = 0, end: int | None = None) -> ObjectStream:
        self._enter("get", key)
        self.ranges.append((start, end))
        self.gets.append((key, start, end))
        return await self.inner.get(key, start=start, end=end)

    async def head(self, key: str) -> ObjectInfo:
        self._enter("head", key)
        return await self.inner.head(key)

    async def delete(self, key: str) -> None:
        self._enter("delete", key)
        await self.inner.delete(key)

    async def list(
        self, prefix: str = "", *, start_after: str | None = None, limit: int = 1000
    ) -> ListPage:
        self._enter("list", prefix)
        page = await self.inner.list(prefix, start_after=start_after, limit=limit)
        self.listed += len(page.items)
        return page

    async def close(self) -> None:
        await self.inner.close()
