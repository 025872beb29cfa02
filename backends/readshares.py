"""How large the next chunk of each stream being read is: shares of one budget (issue 12, item 5).

A lone stream reads ``STREAM_CHUNK_BYTES`` at a time: the fewest thread hops and sends, so a
large load runs at full speed. While many streams are read at once, each reads its share of
the budget, never less than ``MIN_READ_BYTES``, so together they hold about the budget instead
of a full chunk each (plus, on Python 3.11, the copy asyncio's transport keeps of what a
socket has not taken yet). Nothing ever waits for its share: a slow client holds one chunk,
never the others' turn.

Each store takes its streams' shares from one ``ReadShares`` of the process (see
``CallLimits``), as uploads take their buffers from one ``BufferBudget``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from modelshelf.backends.protocol import STREAM_CHUNK_BYTES

# 16 streams read at 1 MiB, 50 at 320 KiB each. bench/concurrent_loads.py, 50 loads of a
# 2 MiB model at once: 8 MiB peaked ~10 MB lower than 16 but answered ~25% fewer req/s;
# 16 MiB answers as many as 1 MiB chunks did (bench/README.md).
DEFAULT_READ_BUDGET_BYTES = 16 << 20
MIN_READ_BYTES = 64 << 10  # chunk sizes are multiples of this


class ReadShares:
    """Chunk sizes for the streams being read at once.

    Attributes:
        capacity: bytes the chunks of every stream being read may hold together.
        reading: streams being read now (between their first chunk and their end or close).
    """

    def __init__(self, capacity: int = DEFAULT_READ_BUDGET_BYTES) -> None:
        if capacity < MIN_READ_BYTES:
            raise ValueError(f"a read budget needs at least {MIN_READ_BYTES} bytes")
        self.capacity = capacity
        self.reading = 0

    def chunk_bytes(self) -> int:
        """The most bytes a stream being read may read next."""
        share = self.capacity // max(self.reading, 1) // MIN_READ_BYTES * MIN_READ_BYTES
        return max(MIN_READ_BYTES, min(STREAM_CHUNK_BYTES, share))

    @contextmanager
    def stream(self) -> Iterator[None]:
        """Count one stream as being read for the duration (use it on the event loop only)."""
        self.reading += 1
        try:
            yield
        finally:
            self.reading -= 1
