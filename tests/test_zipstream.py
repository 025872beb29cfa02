"""The export's zip: its announced length, its members, and its sources closed early."""

from __future__ import annotations

import io
import zipfile
from collections.abc import AsyncIterator

from modelshelf.service.zipstream import ZipArchive, ZipEntry


async def chunks_of(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_the_archive_is_as_long_as_announced_and_unzips() -> None:
    weights = [bytes([index]) * 70_000 for index in range(5)]
    archive = ZipArchive(
        [
            ZipEntry("net.json", 2, b"{}"),
            ZipEntry("net.weights.bin", sum(map(len, weights)), chunks_of(*weights)),
            ZipEntry("empty.bin", 0, chunks_of()),
            ZipEntry("ünïcode.bin", 3, chunks_of(b"a", b"", b"bc")),
        ]
    )
    data = b"".join([chunk async for chunk in archive])
    assert len(data) == len(archive)
    members = zipfile.ZipFile(io.BytesIO(data))
    assert members.testzip() is None  # every CRC checks
    assert members.namelist() == ["net.json", "net.weights.bin", "empty.bin", "ünïcode.bin"]
    assert members.read("net.weights.bin") == b"".join(weights)
    assert members.read("empty.bin") == b""
    assert members.read("ünïcode.bin") == b"abc"
    assert all(info.compress_type == zipfile.ZIP_STORED for info in members.infolist())


async def test_a_reader_that_stops_early_closes_the_member_streams() -> None:
    closed = []

    async def backend_stream() -> AsyncIterator[bytes]:
        try:
            for _ in range(10):
                yield b"x" * 1000
        finally:
            closed.append(True)

    archive = ZipArchive([ZipEntry("w.bin", 10_000, backend_stream())])
    stream = aiter(archive)
    await anext(stream)  # the local header
    await anext(stream)  # the first chunk
    await stream.aclose()  # type: ignore[attr-defined]
    assert closed == [True]
