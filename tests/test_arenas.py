"""The server caps glibc's malloc arenas, and leaves an operator's own choice (service.arenas)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from modelshelf.service.arenas import ARENAS

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's arenas")

# Eight threads alive at once, each allocating: glibc gives each an arena unless capped.
CHILD = """
import ctypes, os, sys, tempfile, threading
from modelshelf.service.arenas import limit_malloc_arenas
if sys.argv[1] == "capped":
    limit_malloc_arenas()
start = threading.Barrier(8)
def allocate():
    start.wait()
    for _ in range(100):
        blocks = [bytearray(100_000) for _ in range(4)]
        del blocks
threads = [threading.Thread(target=allocate) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
libc = ctypes.CDLL(None)
libc.fdopen.restype = ctypes.c_void_p
with tempfile.TemporaryFile() as report:
    stream = libc.fdopen(os.dup(report.fileno()), b"w")
    libc.malloc_info(0, ctypes.c_void_p(stream))
    libc.fclose(ctypes.c_void_p(stream))
    report.seek(0)
    print(report.read().count(b"<heap nr="), os.environ.get("MALLOC_ARENA_MAX"))
"""


def arenas_and_setting(mode: str, **env: str) -> tuple[int, str]:
    clean = {name: value for name, value in os.environ.items() if name != "MALLOC_ARENA_MAX"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, mode],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    count, setting = done.stdout.split()
    return int(count), setting


def test_the_server_runs_on_two_arenas_and_its_workers_too() -> None:
    uncapped, _ = arenas_and_setting("as-is")
    capped, setting = arenas_and_setting("capped")
    assert capped <= ARENAS < uncapped
    assert setting == str(ARENAS)  # what spawned workers read at their start


def test_an_operators_own_setting_stays() -> None:
    _count, setting = arenas_and_setting("capped", MALLOC_ARENA_MAX="4")
    assert setting == "4"
