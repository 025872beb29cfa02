"""A streamed, uncompressed (STORED) zip archive whose size is known before the first byte.

Entries are async byte streams of known size; each CRC-32 is computed as the bytes pass
and written in a data descriptor after them, so nothing is buffered. ZIP64 records are
used when a size or offset needs them (models over 4 GiB).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field

_LIMIT = 0xFFFFFFFF
_FLAGS = 0x0008 | 0x0800  # sizes and CRC in a data descriptor; UTF-8 names
_DOS_TIME, _DOS_DATE = 0, (1980 - 1980) << 9 | 1 << 5 | 1


@dataclass(slots=True)
class ZipEntry:
    """One member: its name, exact size, and its bytes (consumed once)."""

    name: str
    size: int
    chunks: AsyncIterable[bytes]
    zip64: bool = False
    _offset: int = 0
    _crc: int = field(default=0)

    @property
    def encoded_name(self) -> bytes:
        return self.name.encode("utf-8")


def archive_size(entries: list[ZipEntry], force_zip64: bool = False) -> int:
    """The exact byte length ``stream_zip`` will produce."""
    total = 0
    for entry in entries:
        entry.zip64 = force_zip64 or entry.size >= _LIMIT or total >= _LIMIT
        total += _local_header_size(entry) + entry.size + _descriptor_size(entry)
    directory = sum(_central_header_size(entry) for entry in entries)
    return total + directory + _end_size(total, directory, entries, force_zip64)


async def stream_zip(entries: list[ZipEntry], force_zip64: bool = False) -> AsyncIterator[bytes]:
    """Yield the archive; call ``archive_size`` first for the Content-Length."""
    archive_size(entries, force_zip64)  # decides zip64 per entry, as the size did
    offset = 0
    for entry in entries:
        entry._offset = offset
        header = _local_header(entry)
        yield header
        crc, written = 0, 0
        async for chunk in entry.chunks:
            crc = zlib.crc32(chunk, crc)
            written += len(chunk)
            yield chunk
        if written != entry.size:
            raise ValueError(f"zip entry {entry.name!r} had {written} bytes, not {entry.size}")
        entry._crc = crc
        descriptor = _descriptor(entry)
        yield descriptor
        offset += len(header) + entry.size + len(descriptor)
    directory = b"".join(_central_header(entry) for entry in entries)
    yield directory
    yield _end(offset, len(directory), entries, force_zip64)


def _local_header_size(entry: ZipEntry) -> int:
    return 30 + len(entry.encoded_name) + (20 if entry.zip64 else 0)


def _local_header(entry: ZipEntry) -> bytes:
    extra = struct.pack("<HHQQ", 0x0001, 16, 0, 0) if entry.zip64 else b""
    sizes = _LIMIT if entry.zip64 else 0
    version = 45 if entry.zip64 else 20
    return (
        struct.pack(
            "<IHHHHHIIIHH",
            0x04034B50,
            version,
            _FLAGS,
            0,
            _DOS_TIME,
            _DOS_DATE,
            0,
            sizes,
            sizes,
            len(entry.encoded_name),
            len(extra),
        )
        + entry.encoded_name
        + extra
    )


def _descriptor_size(entry: ZipEntry) -> int:
    return 24 if entry.zip64 else 16


def _descriptor(entry: ZipEntry) -> bytes:
    if entry.zip64:
        return struct.pack("<IIQQ", 0x08074B50, entry._crc, entry.size, entry.size)
    return struct.pack("<IIII", 0x08074B50, entry._crc, entry.size, entry.size)


def _central_header_size(entry: ZipEntry) -> int:
    return 46 + len(entry.encoded_name) + (28 if entry.zip64 else 0)


def _central_header(entry: ZipEntry) -> bytes:
    zip64 = entry.zip64
    extra = (
        struct.pack("<HHQQQ", 0x0001, 24, entry.size, entry.size, entry._offset) if zip64 else b""
    )
    size = _LIMIT if zip64 else entry.size
    offset = _LIMIT if zip64 else entry._offset
    version = 45 if zip64 else 20
    return (
        struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            version,
            version,
            _FLAGS,
            0,
            _DOS_TIME,
            _DOS_DATE,
            entry._crc,
            size,
            size,
            len(entry.encoded_name),
            len(extra),
            0,
            0,
            0,
            0,
            offset,
        )
        + entry.encoded_name
        + extra
    )


def _needs_zip64_end(offset: int, entries: list[ZipEntry], force: bool) -> bool:
    return force or offset >= _LIMIT or any(entry.zip64 for entry in entries)


def _end_size(offset: int, directory: int, entries: list[ZipEntry], force: bool) -> int:
    return 22 + (56 + 20 if _needs_zip64_end(offset, entries, force) else 0)


def _end(offset: int, directory: int, entries: list[ZipEntry], force: bool) -> bytes:
    count = len(entries)
    if not _needs_zip64_end(offset, entries, force):
        return struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, directory, offset, 0)
    zip64_end = struct.pack(
        "<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, count, count, directory, offset
    )
    locator = struct.pack("<IIQI", 0x07064B50, 0, offset + directory, 1)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, _LIMIT, _LIMIT, 0)
    return zip64_end + locator + end
