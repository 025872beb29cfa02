"""The one contract every backend keeps, run over each: [memory], [file], [sqlite], [s3]."""

from __future__ import annotations

import asyncio
import os
import tracemalloc
from collections.abc import AsyncIterator

import pytest

from modelshelf.backends import (
    Backend,
    InvalidKeyError,
    InvalidRangeError,
    NotFoundError,
    StorageError,
    open_backend,
)
from modelshelf.backends.ops import iter_keys, put_bytes, read_all, sweep_incomplete
from modelshelf.backends.protocol import STREAM_CHUNK_BYTES, ObjectStream
from modelshelf.backends.readshares import DEFAULT_READ_BUDGET_BYTES
from modelshelf.backends.sqlite import BATCH_BYTES, CHUNK_BYTES
from tests.support.leftovers import MIB, hanging_put


async def chunked(data: bytes, size: int) -> AsyncIterator[bytes]:
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]


async def failing_after(data: bytes) -> AsyncIterator[bytes]:
    yield data
    raise ConnectionResetError("source broke")


async def test_put_then_get(backend: Backend) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    info = await backend.put("a/b.bin", chunked(data, 65536))
    assert info.size == len(data)
    stream = await backend.get("a/b.bin")
    assert stream.info.size == len(data)
    assert stream.info.etag == info.etag
    assert b"".join([chunk async for chunk in stream]) == data


async def test_empty_value(backend: Backend) -> None:
    await put_bytes(backend, "empty", b"")
    assert (await backend.head("empty")).size == 0
    assert await read_all(backend, "empty") == b""


async def test_overwrite_replaces_value_and_etag(backend: Backend) -> None:
    first = await put_bytes(backend, "k", b"one")
    second = await put_bytes(backend, "k", b"second")
    assert await read_all(backend, "k") == b"second"
    assert (await backend.head("k")).etag == second.etag
    assert first.etag != second.etag


async def test_missing_key_raises_not_found(backend: Backend) -> None:
    for operation in (backend.get, backend.head, backend.delete):
        with pytest.raises(NotFoundError):
            await operation("nope/missing")
    with pytest.raises(FileNotFoundError):  # NotFoundError is a FileNotFoundError too
        await backend.head("nope")


async def test_delete_removes(backend: Backend) -> None:
    await put_bytes(backend, "x/y", b"1")
    await backend.delete("x/y")
    with pytest.raises(NotFoundError):
        await backend.get("x/y")
    assert [info.key async for info in iter_keys(backend)] == []


async def test_failed_source_leaves_nothing(backend: Backend) -> None:
    with pytest.raises(ConnectionResetError):
        await backend.put("half", failing_after(b"x" * 100_000))
    assert [info.key async for info in iter_keys(backend)] == []
    with pytest.raises(NotFoundError):
        await backend.head("half")


async def test_failed_overwrite_keeps_old_value(backend: Backend) -> None:
    await put_bytes(backend, "keep", b"old")
    with pytest.raises(ConnectionResetError):
        await backend.put("keep", failing_after(b"new" * 1000))
    assert await read_all(backend, "keep") == b"old"
    assert [info.key async for info in iter_keys(backend)] == ["keep"]


async def test_list_prefix_sorted_with_sizes(backend: Backend) -> None:
    for key in ["b/2", "a/1", "ab", "a/0/deep", "c"]:
        await put_bytes(backend, key, key.encode())
    page = await backend.list("a")
    assert [info.key for info in page.items] == ["a/0/deep", "a/1", "ab"]
    assert [info.size for info in page.items] == [8, 3, 2]
    assert page.next_cursor is None
    assert [info.key for info in (await backend.list("a/")).items] == ["a/0/deep", "a/1"]
    assert (await backend.list("zzz")).items == []


async def test_list_pagination(backend: Backend) -> None:
    keys = [f"p/{index:03d}" for index in range(25)]
    for key in keys:
        await put_bytes(backend, key, b"")
    seen: list[str] = []
    cursor = None
    while True:
        page = await backend.list("p/", start_after=cursor, limit=10)
        seen += [info.key for info in page.items]
        assert len(page.items) <= 10
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == keys


async def test_unusual_but_valid_keys(backend: Backend) -> None:
    keys = ["demo/management/model 1+ü", "sp ace/%41", "emoji/🙂", "dots/a.b..c", "~tilde/x"]
    for key in keys:
        await put_bytes(backend, key, key.encode())
    for key in keys:
        assert await read_all(backend, key) == key.encode()
    assert sorted(keys) == [info.key async for info in iter_keys(backend)]


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/abs",
        "a/../b",
        "..",
        "a//b",
        "a/",
        "nul\x00",
        "./a",
        "a\\b",
        "x" * 1100,
        "seg/" + "y" * 300,
        "ctl\x07",
    ],
)
async def test_invalid_keys_rejected(backend: Backend, key: str) -> None:
    with pytest.raises(InvalidKeyError):
        await put_bytes(backend, key, b"x")
    with pytest.raises(InvalidKeyError):
        await backend.get(key)


async def test_key_that_is_also_a_prefix(backend: Backend) -> None:
    await put_bytes(backend, "a/b", b"child")
    if not backend.capabilities.prefix_keys:
        with pytest.raises(InvalidKeyError):
            await put_bytes(backend, "a", b"parent")
        return
    await put_bytes(backend, "a", b"parent")
    assert await read_all(backend, "a") == b"parent"
    assert await read_all(backend, "a/b") == b"child"


async def test_persistent_backends_survive_reopen(backend: Backend, backend_url: str) -> None:
    await put_bytes(backend, "durable", b"still here")
    reopened = open_backend(backend_url)
    try:
        if backend.capabilities.persistent:
            assert await read_all(reopened, "durable") == b"still here"
        else:
            with pytest.raises(NotFoundError):
                await reopened.head("durable")
    finally:
        await reopened.close()


async def test_partial_read_can_be_closed(backend: Backend) -> None:
    await put_bytes(backend, "big", os.urandom(5 * 1024 * 1024))
    stream = await backend.get("big")
    first = await anext(stream.chunks)
    assert 0 < len(first) <= stream.info.size
    await stream.aclose()
    await backend.delete("big")  # nothing holds the value open


async def test_concurrent_puts_end_on_one_whole_value(backend: Backend) -> None:
    values = [bytes([index]) * 2_000_000 for index in range(3)]
    await asyncio.gather(*(backend.put("race", chunked(value, 100_000)) for value in values))
    assert await read_all(backend, "race") in values
    assert [info.key async for info in iter_keys(backend)] == ["race"]


# Loads at once (issue 12, item 5): each may read its share of the read budget per chunk.
STREAMS_AT_ONCE = 32
SHARE_BYTES = DEFAULT_READ_BUDGET_BYTES // STREAMS_AT_ONCE


async def streams_past_their_first_chunk(backend: Backend, key: str) -> list[ObjectStream]:
    """STREAMS_AT_ONCE open streams of ``key``, each past its first chunk: all being read."""
    streams = [await backend.get(key) for _ in range(STREAMS_AT_ONCE)]
    for stream in streams:
        await anext(stream.chunks)
    return streams


async def test_streams_read_at_once_share_the_read_budget(backend: Backend) -> None:
    data = os.urandom(4 * MIB)
    await backend.put("shared", chunked(data, MIB))
    streams = await streams_past_their_first_chunk(backend, "shared")
    seconds = [len(await anext(stream.chunks)) for stream in streams]
    for stream in streams:
        await stream.aclose()
    assert 0 < max(seconds) <= SHARE_BYTES < STREAM_CHUNK_BYTES
    lone = await backend.get("shared")
    sizes = [len(chunk) async for chunk in lone]  # the others closed: full chunks again
    assert max(sizes) == STREAM_CHUNK_BYTES and sum(sizes) == len(data)


async def test_an_open_stream_holds_at_most_the_chunk_it_gave_last(backend: Backend) -> None:
    """No read-ahead: between chunks, a stream holds at most its last one (and a few objects)."""
    await backend.put("ahead", chunked(os.urandom(4 * MIB), MIB))
    tracemalloc.start()
    try:
        streams = await streams_past_their_first_chunk(backend, "ahead")
        for stream in streams:
            await anext(stream.chunks)  # dropped at once, as a response sends it on
        held, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    for stream in streams:
        await stream.aclose()
    assert held <= STREAMS_AT_ONCE * (SHARE_BYTES + (128 << 10))


# Bytes past two SQLite rows and one write batch, sent in chunks that align with neither.
RANGED = os.urandom(BATCH_BYTES + CHUNK_BYTES + 4321)
RANGES = {
    "first bytes": (0, 10),
    "first byte": (0, 1),
    "middle": (1000, 5000),
    "across a row": (CHUNK_BYTES - 5, CHUNK_BYTES + 5),
    "across a batch": (BATCH_BYTES - 3, BATCH_BYTES + 3),
    "rows past the read-ahead": (CHUNK_BYTES // 2, len(RANGED) - 7),
    "suffix to the end": (len(RANGED) - 100, None),
    "from a row start": (2 * CHUNK_BYTES, None),
    "last byte": (len(RANGED) - 1, len(RANGED)),
    "end past the end": (len(RANGED) - 10, len(RANGED) + 1000),
    "whole": (0, None),
}


@pytest.fixture
async def ranged_value(backend: Backend) -> str:
    await backend.put("r/value.bin", chunked(RANGED, 65536 + 7))
    return "r/value.bin"


@pytest.mark.parametrize("span", RANGES.values(), ids=RANGES.keys())
async def test_ranged_get_reads_only_its_bytes(
    backend: Backend, ranged_value: str, span: tuple[int, int | None]
) -> None:
    start, end = span
    stream = await backend.get(ranged_value, start=start, end=end)
    data = b"".join([chunk async for chunk in stream])
    assert data == RANGED[start:end]
    assert stream.info.size == len(RANGED)  # the whole value's, whatever the range
    assert stream.info.etag == (await backend.head(ranged_value)).etag
    assert (stream.start, stream.end) == (start, min(end or len(RANGED), len(RANGED)))
    assert stream.length == len(data)


@pytest.mark.parametrize(
    "span",
    [(-1, None), (-5, 3), (10, 10), (10, 9), (len(RANGED), None), (len(RANGED) + 1, None)],
    ids=["negative", "negative start", "empty", "inverted", "at the end", "past the end"],
)
async def test_ranged_get_of_nothing_is_refused(
    backend: Backend, ranged_value: str, span: tuple[int, int | None]
) -> None:
    with pytest.raises(InvalidRangeError):
        await backend.get(ranged_value, start=span[0], end=span[1])
    with pytest.raises(ValueError):  # InvalidRangeError is a ValueError too
        await backend.get(ranged_value, start=span[0], end=span[1])
    assert await read_all(backend, ranged_value) == RANGED  # nothing was left open


async def test_ranges_of_an_empty_value(backend: Backend) -> None:
    await put_bytes(backend, "empty", b"")
    stream = await backend.get("empty", start=0, end=None)
    assert [chunk async for chunk in stream] == []
    assert (stream.start, stream.end, stream.length) == (0, 0, 0)
    for start, end in [(0, 1), (1, None)]:
        with pytest.raises(InvalidRangeError):
            await backend.get("empty", start=start, end=end)


async def test_ranged_get_of_a_missing_key_raises_not_found(backend: Backend) -> None:
    with pytest.raises(NotFoundError):
        await backend.get("nope/missing", start=5, end=10)


async def test_partial_ranged_read_can_be_closed(backend: Backend, ranged_value: str) -> None:
    stream = await backend.get(ranged_value, start=CHUNK_BYTES // 2)
    first = await anext(stream.chunks)
    assert first == RANGED[CHUNK_BYTES // 2 : CHUNK_BYTES // 2 + len(first)]
    await stream.aclose()
    await backend.delete(ranged_value)  # nothing holds the value open


async def swept_bytes(backend: Backend, at_least: int) -> int:
    """What a dry sweep finds, once it reaches ``at_least`` bytes (the put's bytes landed)."""
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        found = sum(item.size for item in await sweep_incomplete(backend, 0, dry_run=True))
        if found >= at_least:
            return found
        assert asyncio.get_running_loop().time() < deadline, f"only {found} bytes to sweep"
        await asyncio.sleep(0.05)


async def test_sweep_frees_what_a_killed_put_left(backend: Backend, backend_url: str) -> None:
    if not backend.capabilities.sweeps_incomplete:
        assert await sweep_incomplete(backend, 0) == []  # nothing outlives its put here
        return
    await put_bytes(backend, "kept", b"committed")
    with hanging_put(backend_url, "killed/value", 10 * MIB):
        await swept_bytes(backend, 8 * MIB)  # a part, two batches or the written file
        assert await sweep_incomplete(backend, 3600) == []  # a put in flight keeps its bytes
    dry = await sweep_incomplete(backend, 0, dry_run=True)
    assert await sweep_incomplete(backend, 0, dry_run=True) == dry  # a dry run removes nothing
    assert sum(item.size for item in dry) >= 8 * MIB
    assert await sweep_incomplete(backend, 0) == dry
    assert await sweep_incomplete(backend, 0, dry_run=True) == []
    assert [info.key async for info in iter_keys(backend)] == ["kept"]
    assert await read_all(backend, "kept") == b"committed"


async def test_a_put_swept_midway_fails_and_leaves_nothing(backend: Backend) -> None:
    """A put outliving gc's threshold loses its bytes: it must fail, never commit torn."""
    if not backend.capabilities.sweeps_incomplete:
        return
    sent, release = asyncio.Event(), asyncio.Event()

    async def source() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"Q" * MIB
        sent.set()
        await release.wait()
        yield b"R" * MIB

    put = asyncio.create_task(backend.put("slow/value", source()))
    await sent.wait()
    await swept_bytes(backend, 8 * MIB)
    assert sum(item.size for item in await sweep_incomplete(backend, 0)) >= 8 * MIB
    release.set()
    with pytest.raises(StorageError):
        await put
    with pytest.raises(NotFoundError):
        await backend.head("slow/value")
    await sweep_incomplete(backend, 0)  # rows the put wrote after the sweep
    assert await sweep_incomplete(backend, 0, dry_run=True) == []
    assert [info.key async for info in iter_keys(backend)] == []
