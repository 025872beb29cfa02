"""What loads hold while many run at once (issue 12, item 5).

The backends' own chunks are in the contract suite; here: SQLite's memory per open stream.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from modelshelf.backends import open_backend
from tests.test_backend_contract import (
    STREAMS_AT_ONCE,
    chunked,
    streams_past_their_first_chunk,
)

MIB = 1 << 20
READER_BYTES = 256 << 10  # what one open SQLite stream may hold in SQLite's own memory


def sqlite_memory_used() -> Callable[[], int] | None:
    """SQLite's ``sqlite3_memory_used`` of the library sqlite3 runs on, if it is a shared one."""
    maps = Path("/proc/self/maps")
    if not maps.exists():
        return None
    libraries = {line.split()[-1] for line in maps.read_text().splitlines() if "libsqlite3" in line}
    if len(libraries) != 1:  # built into _sqlite3, or not loaded: nothing to ask
        return None
    library = ctypes.CDLL(libraries.pop())
    library.sqlite3_memory_used.restype = ctypes.c_int64
    used: Callable[[], int] = library.sqlite3_memory_used
    return used


async def test_open_sqlite_streams_hold_small_page_caches(tmp_path: Path) -> None:
    used = sqlite_memory_used()
    if used is None:
        pytest.skip("SQLite is not a shared library here: its memory cannot be asked")
    backend = open_backend(f"sqlite://{tmp_path / 'store.sqlite'}")
    try:
        await backend.put("value", chunked(os.urandom(4 * MIB), MIB))
        before = used()
        streams = await streams_past_their_first_chunk(backend, "value")
        for stream in streams:
            await anext(stream.chunks)
        held = used() - before
        for stream in streams:
            await stream.aclose()
    finally:
        await backend.close()
    assert held <= STREAMS_AT_ONCE * READER_BYTES
