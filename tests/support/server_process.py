"""A modelshelf server in its own process, for tests that may crash or freeze a server.

A segfault in a server run in a thread would take pytest down with it; a subprocess
reports it as an exit status the test can assert on.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.live_server import free_port

START_TIMEOUT_SECONDS = 30.0


class ServerProcess:
    """A running ``python -m modelshelf.service``; ``url`` has no trailing slash."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
        self.process = process
        self.url = url
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def threads(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/task"))

    def describe_exit(self) -> str:
        code = self.process.poll()
        if code is None:
            return "running"
        if code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exited with {code}"


@contextmanager
def server_process(
    stores: dict[str, str], workdir: Path, **settings: object
) -> Iterator[ServerProcess]:
    """Start a server on the given stores; extra settings become MODELSHELF_* variables."""
    port = free_port()
    env = {**os.environ, "MODELSHELF_STORES": json.dumps(stores), "MODELSHELF_QUOTAS": "{}"}
    for name, value in settings.items():
        env[f"MODELSHELF_{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    log_path = workdir / f"server-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "modelshelf.service",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parents[2],
        )
    server = ServerProcess(process, f"http://127.0.0.1:{port}", log_path)
    try:
        _wait_ready(server)
        yield server
    finally:
        if server.alive():
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_ready(server: ServerProcess) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if not server.alive():
            raise RuntimeError(f"the server {server.describe_exit()}:\n{server.log()}")
        try:
            if httpx.get(server.url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"the server did not start in {START_TIMEOUT_SECONDS} s:\n{server.log()}")
