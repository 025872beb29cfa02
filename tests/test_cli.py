"""The ``modelshelf`` command against a live server: push, pull, export, ls, info, rm, cp, mv."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.support.cli import cli, cli_json
from tests.support.live_server import free_port
from tests.support.tfjs import tfjs

FIXTURE = Path(__file__).parent / "fixtures" / "graph_model"
WITHOUT_RICH = "import sys; sys.modules['rich'] = None; from modelshelf.cli import main; main()"


@pytest.fixture(scope="module")
def server(serve_module: Callable[..., str]) -> str:
    return serve_module("file", "indexeddb")


def test_push_pull_export_round_trip(server: str, tmp_path: Path) -> None:
    pushed = cli_json(server, "push", str(FIXTURE), "file://team/graph net")
    assert pushed["modelUrl"] == "file://team/graph net"
    cli(server, "pull", "file://team/graph net", str(tmp_path / "pulled"), "--no-progress")
    for file in FIXTURE.iterdir():
        if file.suffix in (".json", ".bin"):
            assert (tmp_path / "pulled" / file.name).read_bytes() == file.read_bytes()
    exported = cli_json(server, "export", "file://team/graph net", str(tmp_path / "out"))
    assert sorted(Path(p).name for p in exported["files"]) == [
        "graph net.json",
        "graph net.weights.bin",
    ]


@pytest.mark.node
def test_pushed_folder_loads_in_tfjs(server: str) -> None:
    pushed = cli_json(server, "push", str(FIXTURE), "indexeddb://pushed")
    x = [[1.0, -2.0, 0.5]]
    loaded = tfjs("load-graph", "--url", pushed["loadUrl"], "--input", json.dumps(x))
    import importlib.util

    spec = importlib.util.spec_from_file_location("fixture", FIXTURE.parent / "make_graph_model.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    want = np.asarray(module.expected_output(np.array(x, dtype=np.float32)), dtype=np.float32)
    got = np.array(loaded["outputs"], dtype=np.float32)
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))


def test_listing_info_versions_copy_move_remove(server: str) -> None:
    first = cli_json(server, "push", str(FIXTURE), "indexeddb://m/one")
    second = cli_json(server, "push", str(FIXTURE), "indexeddb://m/one")
    listed = cli_json(server, "ls", "indexeddb://m/")
    assert list(listed) == ["indexeddb://m/one"]
    assert "indexeddb://m/one" in cli_json(server, "ls")
    info = cli_json(server, "info", "indexeddb://m/one")
    assert info["currentVersion"] == second["versionId"]
    versions = cli_json(server, "versions", "indexeddb://m/one")
    assert [v["id"] for v in versions] == [first["versionId"], second["versionId"]]
    assert "m/one" in cli(server, "ls", "indexeddb").stdout
    cli(server, "cp", "indexeddb://m/one", "file://m/copy")
    cli(server, "mv", "file://m/copy", "indexeddb://m/moved")
    cli(server, "rm", "indexeddb://m/one", "--version", first["versionId"])
    assert len(cli_json(server, "versions", "indexeddb://m/one")) == 1
    removed = cli(server, "rm", "indexeddb://m/one")
    assert "removed indexeddb://m/one" in removed.stdout
    assert sorted(cli_json(server, "ls", "indexeddb://m/")) == ["indexeddb://m/moved"]


def test_exit_codes_and_messages(server: str, tmp_path: Path) -> None:
    missing = cli(server, "info", "indexeddb://nope", expect=3)
    assert "no model" in missing.stderr
    bad_url = cli(server, "info", "nope", expect=2)
    assert "STORE://NAME" in bad_url.stderr
    no_folder = cli(server, "push", str(tmp_path), "indexeddb://x", expect=2)
    assert "model.json" in no_folder.stderr
    offline = cli(f"http://127.0.0.1:{free_port()}", "ls", "indexeddb", expect=4)
    assert "MODELSHELF_URL" in offline.stderr
    usage = subprocess.run(
        [sys.executable, "-m", "modelshelf", "cp", "only-one"], capture_output=True, text=True
    )
    assert usage.returncode == 2


def test_help_describes_every_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "modelshelf", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("serve", "push", "pull", "export", "ls", "info", "versions", "rm", "cp", "mv"):
        assert command in result.stdout
    assert "exit codes" in result.stdout


def cli_on_terminal(
    server: str, *args: str, stdout_too: bool = False, rich: bool = True
) -> tuple[str, str]:
    """The CLI with stderr (and stdout if ``stdout_too``) on a pseudo-terminal.

    Returns what went to a piped stdout, and what the terminal showed.
    """
    controller, terminal = pty.openpty()
    entry = ["-m", "modelshelf"] if rich else ["-c", WITHOUT_RICH]
    process = subprocess.Popen(
        [sys.executable, *entry, *args, "--server", server],
        stdin=subprocess.DEVNULL,
        stdout=terminal if stdout_too else subprocess.PIPE,
        stderr=terminal,
        env={**os.environ, "COLUMNS": "100", "TERM": "xterm"},
    )
    os.close(terminal)
    shown = bytearray()
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the CLI closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)
    stdout, _ = process.communicate(timeout=120)
    assert process.returncode == 0, shown.decode(errors="replace")
    return (stdout or b"").decode(), shown.decode(errors="replace")


@pytest.mark.parametrize("rich", [True, False], ids=["rich", "plain"])
def test_progress_goes_to_the_terminal_and_json_stays_clean(server: str, rich: bool) -> None:
    stdout, shown = cli_on_terminal(
        server, "push", str(FIXTURE), "indexeddb://drawn", "--json", rich=rich
    )
    assert json.loads(stdout)["modelUrl"] == "indexeddb://drawn"
    assert "push" in shown
    assert ("━" in shown) if rich else ("[###" in shown)  # rich's bar, or the plain one


@pytest.mark.parametrize("rich", [True, False], ids=["rich", "plain"])
def test_listing_is_a_table_on_a_terminal_and_tab_separated_in_a_pipe(
    server: str, rich: bool
) -> None:
    cli_json(server, "push", str(FIXTURE), "indexeddb://listed/a")
    _, shown = cli_on_terminal(server, "ls", "indexeddb://listed/", stdout_too=True, rich=rich)
    assert "indexeddb://listed/a" in shown
    assert ("model" in shown and "\t" not in shown) if rich else "\t" in shown
    piped = cli(server, "ls", "indexeddb://listed/").stdout
    assert piped.startswith("indexeddb://listed/a\t")
