"""What the CLI draws for a person at a terminal: progress bars on stderr, tables on stdout.

rich draws them when it is installed (``pip install "modelshelf[cli]"``); without it the
CLI prints the same facts as plain text, so ``pip install modelshelf`` stays httpx, numpy
and pydantic. Nothing here runs for scripts: no terminal, or ``--json``, means plain text.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib.util import find_spec

ProgressCallback = Callable[[int, int | None], None]


def has_rich() -> bool:
    return find_spec("rich") is not None


@contextmanager
def progress_bar(label: str) -> Iterator[ProgressCallback]:
    """A progress callback ``(done, total)`` drawing one bar on stderr until the block ends."""
    if not has_rich():
        yield PlainProgressBar(label)
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True)) as progress:
        task = progress.add_task(label, total=None)
        yield lambda done, total: progress.update(task, completed=done, total=total)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]], plain: str) -> None:
    """Rows as a table on a terminal with rich; ``plain`` (tab-separated) everywhere else."""
    if not (rows and sys.stdout.isatty() and has_rich()):
        print(plain)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(*headers, box=None, header_style="bold")
    for row in rows:
        table.add_row(*row)
    Console().print(table)


def size_text(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count} B"


class PlainProgressBar:
    """A one-line progress bar on stderr, redrawn at most ten times a second."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.started = time.monotonic()
        self.drawn = 0.0

    def __call__(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        finished = total is not None and done >= total
        if now - self.drawn < 0.1 and not finished:
            return
        self.drawn = now
        rate = done / max(now - self.started, 1e-6)
        if total:
            filled = int(30 * done / total)
            bar = f"[{'#' * filled}{'.' * (30 - filled)}] {100 * done / total:5.1f}%"
        else:
            bar = size_text(done)
        sys.stderr.write(f"\r{self.label} {bar} {size_text(rate)}/s")
        if finished:
            sys.stderr.write("\n")
        sys.stderr.flush()
