"""Conveniences derived from the Backend protocol: free functions, not base methods."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import cast

from modelshelf.backends.errors import NotFoundError
from modelshelf.backends.protocol import Backend, IncompleteSweeper, ObjectInfo, SweptItem
from modelshelf.backends.putmodes import PutMode


async def read_all(backend: Backend, key: str) -> bytes:
    """Read a whole (small) value into memory."""
    stream = await backend.get(key)
    try:
        return b"".join([chunk async for chunk in stream])
    finally:
        await stream.aclose()


async def put_bytes(backend: Backend, key: str, data: bytes, mode: PutMode = None) -> ObjectInfo:
    """Store a value already held in memory."""
    return await backend.put(key, _once(data), mode)


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def iter_keys(backend: Backend, prefix: str = "") -> AsyncIterator[ObjectInfo]:
    """Every object under ``prefix``, walking the listing's pages."""
    cursor: str | None = None
    while True:
        page = await backend.list(prefix, start_after=cursor)
        for item in page.items:
            yield item
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


async def delete_if_present(backend: Backend, key: str) -> bool:
    """Delete ``key``; report whether it was there."""
    try:
        await backend.delete(key)
    except NotFoundError:
        return False
    return True


async def copy_value(source: Backend, key: str, destination: Backend, new_key: str) -> ObjectInfo:
    """Stream one value from a backend into another (or the same one)."""
    stream = await source.get(key)
    try:
        return await destination.put(new_key, stream.chunks)
    finally:
        await stream.aclose()


async def sweep_incomplete(
    backend: Backend, older_than_seconds: float, *, dry_run: bool = False
) -> list[SweptItem]:
    """What killed puts left in ``backend`` (freed unless ``dry_run``); [] if it keeps none."""
    if not backend.capabilities.sweeps_incomplete:
        return []
    sweeper = cast(IncompleteSweeper, backend)
    return await sweeper.sweep_incomplete(older_than_seconds, dry_run=dry_run)
