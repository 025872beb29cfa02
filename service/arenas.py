"""Two glibc malloc arenas for the server and the workers it starts (issue 12, item 5).

glibc gives each thread that allocates an arena of its own, up to eight per core, and what
one arena frees serves that arena again. The store threads read the chunks, so under many
loads at once each arena keeps its own high-water mark of freed chunks: with 50 loads of a
small model, 30-40 MB more peak RSS on a SQLite store, 15-20 MB on the others, than with
two arenas, for the same MB/s (bench/README.md, concurrent_loads.py). An operator's own
MALLOC_ARENA_MAX is left as it is.
"""

from __future__ import annotations

import ctypes
import os
import sys

ARENAS = 2
_M_ARENA_MAX = -8  # glibc's malloc.h


def limit_malloc_arenas(arenas: int = ARENAS) -> None:
    """Cap this process's arenas, and those of processes it starts (glibc reads the variable)."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return
    os.environ["MALLOC_ARENA_MAX"] = str(arenas)
    if not sys.platform.startswith("linux"):
        return
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)  # None: a C library without it
    if mallopt is not None:
        mallopt(_M_ARENA_MAX, arenas)
