"""prometheus-client's multiprocess mode for ``modelshelf serve --workers N``.

Each worker writes its metric values to files in ``PROMETHEUS_MULTIPROC_DIR``, and /metrics
sums the files of every process (service.metrics). The variable must be set before a worker
imports prometheus-client, and the directory must start empty: files of an earlier run would
be summed in. An operator's own directory is used (and emptied); otherwise the server makes
a private one for its run and removes it at exit.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prometheus_client import multiprocess
from uvicorn.supervisors import Multiprocess

from modelshelf.service.metrics import MULTIPROC_DIR


@contextmanager
def worker_metrics_directory() -> Iterator[Path]:
    """``PROMETHEUS_MULTIPROC_DIR``, empty, for the workers started inside the block."""
    given = os.environ.get(MULTIPROC_DIR)
    if given:
        directory = Path(given)
        directory.mkdir(parents=True, exist_ok=True)
        _empty(directory)
        yield directory
        return
    directory = Path(tempfile.mkdtemp(prefix="modelshelf-metrics-"))  # mode 0700
    os.environ[MULTIPROC_DIR] = str(directory)
    try:
        yield directory
    finally:
        del os.environ[MULTIPROC_DIR]
        shutil.rmtree(directory, ignore_errors=True)


def _empty(directory: Path) -> None:
    for values in directory.glob("*.db"):  # prometheus-client's files, nothing else
        values.unlink(missing_ok=True)


class MetricsAwareMultiprocess(Multiprocess):
    """uvicorn's supervisor, telling prometheus-client about every worker that has exited.

    An exited worker's live gauges (uploads in flight) are dropped; its counters stay summed.
    """

    _running: frozenset[int] = frozenset()

    def keep_subprocess_alive(self) -> None:
        super().keep_subprocess_alive()
        self._forget_exited_workers()

    def handle_signals(self) -> None:  # SIGHUP restarts workers, SIGTTOU retires one
        super().handle_signals()
        self._forget_exited_workers()

    def _forget_exited_workers(self) -> None:
        running = frozenset(p.pid for p in self.processes if p.pid is not None)
        for pid in self._running - running:
            multiprocess.mark_process_dead(pid, os.environ.get(MULTIPROC_DIR))  # type: ignore[no-untyped-call]
        self._running = running
