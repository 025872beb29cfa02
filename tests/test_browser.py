"""Headless Chromium on another origin saves, loads and manages models through the real TF.js."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.tfjs import JS_DIR, require_tfjs

pytestmark = [pytest.mark.browser, pytest.mark.node]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.fixture(scope="module")
def server(serve_module: Callable[..., str]) -> str:
    return serve_module()


@pytest.mark.parametrize("store", ["indexeddb", pytest.param("s3", marks=pytest.mark.s3)])
def test_cross_origin_page_saves_loads_and_manages(server: str, store: str) -> None:
    require_tfjs()
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is not installed; run `apt-get install -y chromium`")
    SCREENSHOTS.mkdir(exist_ok=True)
    screenshot = SCREENSHOTS / f"browser-{store}.png"
    completed = subprocess.run(
        [
            "node",
            str(JS_DIR / "browser_check.mjs"),
            "--server",
            server,
            "--stores",
            store,
            "--chromium",
            CHROMIUM,
            "--screenshot",
            str(screenshot),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=JS_DIR,
    )
    lines = completed.stdout.strip().splitlines()
    assert lines, completed.stderr[-3000:]
    result = json.loads(lines[-1])
    assert result["ok"], (
        f"{result.get('error')}\nlog:\n{result.get('log')}\nscreenshot: {screenshot}"
    )
    assert result["origin"] != server  # really another origin
    assert f"ok {store}: list, copy, move, remove" in result["log"]
    assert "PUT" in result["log"]
