"""The ``modelshelf`` command run as its users run it: a subprocess against a real server."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any


def cli(server: str, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
    """``modelshelf ARGS --server SERVER``; asserts its exit code."""
    result = subprocess.run(
        [sys.executable, "-m", "modelshelf", *args, "--server", server],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == expect, (result.stdout, result.stderr)
    return result


def cli_json(server: str, *args: str) -> Any:
    return json.loads(cli(server, *args, "--json").stdout)
