"""The incremental multipart reader: any chunking of any body parses the same."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest

from modelshelf.service.multipart import MultipartError, MultipartReader, sniff_boundary
from tests.support.formdata import form_body

BOUNDARY = b"----formdata-undici-0123"
# Payload bytes that look like the start of a delimiter but are not one.
TRICKY = b"\r\n--" + BOUNDARY[:-1] + b"X\r\n-\r\n--\r" + bytes(range(256))


def body(parts: list[tuple[str, bytes]]) -> bytes:
    return form_body(parts, BOUNDARY.decode())


async def split(data: bytes, rng: random.Random) -> AsyncIterator[bytes]:
    offset = 0
    while offset < len(data):
        size = rng.choice([1, 2, 3, 5, 17, 64, 1000, 70_000])
        yield data[offset : offset + size]
        offset += size


async def read_all(stream: AsyncIterator[bytes]) -> list[tuple[str | None, bytes]]:
    reader = MultipartReader(stream, BOUNDARY)
    parts = []
    while (headers := await reader.next_part()) is not None:
        parts.append((headers.name, b"".join([chunk async for chunk in reader.part_body()])))
    return parts


@pytest.mark.parametrize("seed", range(40))
async def test_any_chunking_parses_the_same(seed: int) -> None:
    rng = random.Random(seed)
    parts = [
        ("model.json", b'{"a": 1}'),
        ("model.weights.bin", TRICKY * rng.randrange(1, 400)),
        ("empty.bin", b""),
        ("last.bin", rng.randbytes(rng.randrange(0, 3000))),
    ]
    assert await read_all(split(body(parts), rng)) == parts


async def test_sniffed_boundary_and_truncation() -> None:
    data = body([("model.json", b"{}"), ("w", TRICKY)])
    boundary, stream = await sniff_boundary(split(data, random.Random(1)))
    assert boundary == BOUNDARY
    assert [name for name, _ in await read_all(stream)] == ["model.json", "w"]
    for cut in (10, len(data) // 2, len(data) - 5):
        with pytest.raises(MultipartError):
            await read_all(split(data[:cut], random.Random(cut)))


async def test_lock_step_weight_bytes_flow_on_before_the_next_chunk_is_read() -> None:
    """The reader asks for chunk N+1 only once chunk N's bytes were passed on."""
    weights = [random.Random(index).randbytes(50_000) + b"\r" for index in range(20)]
    closing = b"\r\n--" + BOUNDARY + b"--\r\n"
    start = body([("model.json", b"{}"), ("model.weights.bin", b"")])[: -len(closing)]
    delivered = 0
    held_at_most = len(b"\r\n--" + BOUNDARY)  # a possible delimiter's start waits for more

    async def lock_step() -> AsyncIterator[bytes]:
        sent = 0
        yield start
        for chunk in weights:
            yield chunk
            sent += len(chunk)
            assert sent - delivered <= held_at_most
        yield closing

    reader = MultipartReader(lock_step(), BOUNDARY)
    assert (await reader.next_part()) is not None
    assert await reader.read_part(100, "model.json") == b"{}"
    assert (await reader.next_part()) is not None
    async for chunk in reader.part_body():
        delivered += len(chunk)
    assert delivered == sum(map(len, weights))
    assert await reader.next_part() is None
