"""What the benchmark scripts share: the weight source, progress, peak RSS, the results table.

Imports nothing of the project, so a script can import it before it puts the repository
root on ``sys.path``.
"""

from __future__ import annotations

import json
import os
import platform
import random
import socket
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MIB = 1 << 20
MB = 1_000_000  # throughput and RSS are quoted in MB (10^6 bytes), sizes in MiB
CHUNK_BYTES = MIB
REPOSITORY = Path(__file__).resolve().parents[1]


def weight_chunks(size: int, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """``size`` pseudo-random bytes as fresh chunks: one random block, its head varied per chunk.

    Holds one block, never the whole stream; every chunk differs, so nothing downstream can
    deduplicate or compress it away.
    """
    block = bytearray(random.Random(2).randbytes(chunk_bytes))
    sent = 0
    index = 0
    while sent < size:
        block[:8] = index.to_bytes(8, "little")
        chunk = bytes(block[: min(chunk_bytes, size - sent)])
        sent += len(chunk)
        index += 1
        yield chunk


def megabytes_per_second(size: int, seconds: float) -> float:
    return size / MB / seconds if seconds > 0 else float("inf")


def peak_rss_bytes(pid: int | str = "self") -> int:
    """VmHWM of a process: the peak resident set of its current program image.

    Not ``getrusage().ru_maxrss``: Linux carries the parent's peak into a child across
    fork and exec, so a child's ru_maxrss is never below its parent's RSS at spawn time.
    """
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmHWM in /proc/{pid}/status")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Progress:
    """Progress on stderr: one line redrawn on a terminal, a line every few seconds in a log."""

    def __init__(self, label: str, total: int) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self._tty = sys.stderr.isatty()
        self._interval = 0.5 if self._tty else 5.0
        self._shown_at = time.monotonic()

    def advance(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if now - self._shown_at < self._interval:
            return
        self._shown_at = now
        if self._tty:
            sys.stderr.write(f"\r  {self._line()}\x1b[K")
            sys.stderr.flush()
        else:
            print(f"  {self._line()}", file=sys.stderr, flush=True)

    def finish(self, note: str = "") -> None:
        if self._tty:
            sys.stderr.write(f"\r  {self._line()} {note}\x1b[K\n")
            sys.stderr.flush()
        elif note:
            print(f"  {self.label}: {note}", file=sys.stderr, flush=True)

    def _line(self) -> str:
        return f"{self.label}: {self.done // MIB}/{self.total // MIB} MiB"


def note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Report:
    """A results table for stdout: a title, a header row, rows of figures, notes."""

    title: str
    headers: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: Any) -> None:
        self.rows.append(list(cells))

    def render(self) -> str:
        cells = [self.headers, *[[_cell(value) for value in row] for row in self.rows]]
        widths = [max(len(row[i]) for row in cells) for i in range(len(self.headers))]
        lines = [_line(row, widths) for row in cells]
        lines.insert(1, "  ".join("-" * width for width in widths))
        return "\n".join([self.title, *lines, *self.notes])


def run_metadata(**settings: Any) -> dict[str, Any]:
    """When and where a run happened, for the JSON output."""
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        **settings,
    }


def write_json(path: str | None, payload: dict[str, Any]) -> None:
    if path:
        Path(path).write_text(json.dumps(payload, indent=2) + "\n")


def _line(row: Sequence[str], widths: Sequence[int]) -> str:
    """The first column left-aligned, the figures right-aligned."""
    cells = [row[0].ljust(widths[0])]
    cells += [text.rjust(width) for text, width in zip(row[1:], widths[1:], strict=True)]
    return "  ".join(cells)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) < 10 else f"{value:.0f}"
    return str(value)
