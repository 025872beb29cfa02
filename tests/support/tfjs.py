"""Runs the real @tensorflow/tfjs package (tests/js/tfjs_client.mjs) as a subprocess."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

JS_DIR = Path(__file__).resolve().parents[1] / "js"
CLIENT = JS_DIR / "tfjs_client.mjs"


def require_tfjs() -> None:
    """Fail with the fix when Node or the npm packages are missing (CI installs both)."""
    if shutil.which("node") is None:
        pytest.fail("Node.js is not installed; install Node >= 18")
    if not (JS_DIR / "node_modules" / "@tensorflow" / "tfjs").is_dir():
        pytest.fail(f"TF.js is not installed; run `npm ci` in {JS_DIR}")


def tfjs(*args: str, expect_ok: bool = True, timeout: float = 120) -> dict[str, Any]:
    """Run one harness command and return its JSON result."""
    require_tfjs()
    completed = subprocess.run(
        ["node", str(CLIENT), *args], capture_output=True, text=True, timeout=timeout, cwd=JS_DIR
    )
    lines = completed.stdout.strip().splitlines()
    if not lines:
        raise AssertionError(f"tfjs_client printed nothing; stderr:\n{completed.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    if expect_ok and not result.get("ok"):
        raise AssertionError(f"tfjs_client {args[0]} failed: {result}\n{completed.stderr[-2000:]}")
    return result
