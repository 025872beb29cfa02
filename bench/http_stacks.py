"""Issue 12, item 3: which HTTP server stack runs modelshelf fastest, measured in one run.

The same app (``modelshelf.service.app:create_app``, default stores in a temp dir, one
process) on each candidate, one at a time, each a fresh subprocess:

  - ``uvicorn --http h11 --loop asyncio``: pure Python, the stack before issue 12;
  - ``uvicorn --http httptools --loop uvloop``: what ``uvicorn[standard]`` would pick;
  - ``granian --interface asgi`` (Rust, hyper), if installed (``pip install granian``).

Per stack, for the file and indexeddb stores: model.json alone, the 2 MiB weight file alone
and 304 revalidations of model.json, each with wrk at 50 connections; then a 256 MiB save and
load with curl. Every stack runs twice, in ABC CBA order; the best run is kept.

This measures speed only. Correctness is the test suite's: run it with
``MODELSHELF_HTTP_PARSER=h11`` for the other uvicorn parser (bench/README.md says what granian
lacked).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from benchkit import MB, REPOSITORY, Report, free_port, note, run_metadata, write_json
from service_throughput import Server
from serving_goals import (
    ModelFiles,
    curl_load,
    curl_save,
    save_small,
    weight_url_of,
    write_model_files,
    wrk,
)

from tests.support.seaweed import terminate as stop

STACKS = {
    "uvicorn h11 asyncio": ["uvicorn", "--http", "h11", "--loop", "asyncio"],
    "uvicorn httptools uvloop": ["uvicorn", "--http", "httptools", "--loop", "uvloop"],
    "granian": ["granian"],
}
STORES = ("file", "indexeddb")
APP = "modelshelf.service.app:create_app"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="http-stacks-") as temp:
        workdir = Path(temp)
        files = write_model_files(workdir / "www", args)
        runs: dict[str, list[dict[str, Any]]] = {stack: [] for stack in args.stacks}
        for round_number in range(args.repeat):
            order = args.stacks if round_number % 2 == 0 else list(reversed(args.stacks))
            for stack in order:
                folder = workdir / f"{stack.replace(' ', '-')}-{round_number}"
                runs[stack].append(measure(stack, folder, files, args))
    table = report(runs, args)
    print(table.render())
    write_json(args.json, {"run": run_metadata(**vars(args)), "runs": runs})
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=5, help="each wrk run (5 s)")
    parser.add_argument("--connections", type=int, default=50, help="wrk connections (50)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--small", type=int, default=2, help="small model, MiB (2)")
    parser.add_argument("--size", type=int, default=256, help="save and load, MiB (256)")
    parser.add_argument("--repeat", type=int, default=2, help="rounds, alternating order (2)")
    parser.add_argument("--json", metavar="FILE", help="also write every figure as JSON")
    args = parser.parse_args(argv)
    args.stacks = [stack for stack in STACKS if stack != "granian" or granian() is not None]
    if "granian" not in args.stacks:
        note("granian is not installed: measuring the uvicorn stacks only")
    return args


def granian() -> str | None:
    """granian's command, beside this interpreter (a venv's bin need not be on PATH)."""
    beside = Path(sys.executable).with_name("granian")
    return str(beside) if beside.exists() else shutil.which("granian")


@contextmanager
def serve(stack: str, folder: Path) -> Any:
    folder.mkdir(parents=True)
    port = free_port()
    tool, *options = STACKS[stack]
    if tool == "uvicorn":
        command = [sys.executable, "-m", "uvicorn", APP, "--factory", *options]
        command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    else:
        command = [granian() or "granian", "--interface", "asgi", "--factory"]
        command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", APP]
    env = {**os.environ, "MODELSHELF_DATA_DIR": str(folder), "MODELSHELF_QUOTAS": "{}"}
    env["PYTHONPATH"] = str(REPOSITORY)
    log_path = folder / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
    server = Server(stack, f"http://127.0.0.1:{port}", process, log_path)
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(server.url + "/healthz", timeout=2).raise_for_status()
            break
        except httpx.HTTPError:
            if process.poll() is not None or time.monotonic() > deadline:
                stop(process)
                raise RuntimeError(f"{stack} did not start:\n{server.log_tail()}") from None
            time.sleep(0.1)
    try:
        yield server
    finally:
        stop(process)


def measure(
    stack: str, folder: Path, files: ModelFiles, args: argparse.Namespace
) -> dict[str, Any]:
    found: dict[str, Any] = {}
    with serve(stack, folder) as server:
        for store in STORES:
            json_url, weight_url = save_small(server, store, files)
            etag = httpx.get(json_url, timeout=30).headers["etag"]
            found[f"{store} model.json"] = wrk([json_url], args.seconds, args, folder)["rate"]
            found[f"{store} weight"] = wrk([weight_url], args.seconds, args, folder)["rate"]
            found[f"{store} 304"] = wrk(
                [json_url], args.seconds, args, folder, f"If-None-Match: {etag}"
            )["rate"]
            url = f"{server.url}/v1/models/{store}/bench/large"
            seconds = curl_save(url, files.large_json, files.large_weights)
            size = files.large_weights.stat().st_size
            found[f"{store} save MB/s"] = size / MB / seconds
            found[f"{store} load MB/s"] = size / MB / curl_load(weight_url_of(url), size)
            httpx.delete(url, timeout=120).raise_for_status()
    note(f"{stack}: " + ", ".join(f"{name} {value:.0f}" for name, value in found.items()))
    return found


def report(runs: dict[str, list[dict[str, Any]]], args: argparse.Namespace) -> Report:
    names = list(next(iter(runs.values()))[0])
    best = {
        stack: {name: max(run[name] for run in found) for name in names}
        for stack, found in runs.items()
    }
    baseline = best["uvicorn h11 asyncio"]
    table = Report(
        f"HTTP stacks: one process, {args.connections} connections, {args.small} MiB model, "
        f"{args.size} MiB transfers, best of {args.repeat} ({time.strftime('%Y-%m-%d %H:%M')}, "
        f"load avg {os.getloadavg()[0]:.1f})",
        [
            "figure",
            *[f"{stack}" for stack in best],
            *[f"x h11: {stack}" for stack in best if stack != "uvicorn h11 asyncio"],
        ],
    )
    for name in names:
        others = [
            best[stack][name] / baseline[name] for stack in best if stack != "uvicorn h11 asyncio"
        ]
        unit = "" if "MB/s" in name else " req/s"
        table.add(f"{name}{unit}", *[best[stack][name] for stack in best], *others)
    return table


if __name__ == "__main__":
    sys.exit(main())
