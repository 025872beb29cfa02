"""Issue 14: a view's first load (derived) and cached loads, against the original's load.

A float32 model of --mib MiB (four tensors of normal values) is saved to a real server
(``modelshelf serve``, one process, the embedded default store). Each case loads model.json
and every weight file it names over HTTP, as TF.js does, reading and discarding the bytes:

  - original:        the version as saved: the baseline, measured in the same run;
  - VIEW first:      the first request derives the view (two passes over the weights for a
                     quantization), stores it, then serves it;
  - VIEW cached:     the stored view, served like any version.

Times are quoted as ratios to the original's load. Server memory: VmHWM (reset through
/proc/PID/clear_refs before each case) minus VmRSS before it; the claim is that deriving a
view streams, so this stays far below the model's size.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from benchkit import (
    MB,
    MIB,
    REPOSITORY,
    Progress,
    Report,
    free_port,
    note,
    run_metadata,
    write_json,
)

TENSORS = 4
BOUNDARY = "----formdata-undici-0123456789"
VIEWS = ("quantize=float16", "quantize=uint8", "shard_bytes=4194304")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256, help="model size in MiB (256)")
    parser.add_argument("--cached", type=int, default=3, help="cached loads per view (3)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-views-") as scratch:
        folder = Path(scratch)
        weights = write_weights(folder / "model.weights.bin", args.mib * MIB)
        with serve(folder) as (base, pid):
            url = f"{base}/v1/models/indexeddb/bench"
            upload(url, folder / "model.weights.bin", weights)
            rows = measure(url, pid, args.cached)
    original = rows[0]
    report = Report(
        f"A view of a {args.mib} MiB float32 model (server RSS before: "
        f"{original['rss_before'] / MB:.0f} MB)",
        ["case", "seconds", "x original", "MB sent", "x original bytes", "server RSS growth MB"],
    )
    for row in rows:
        report.add(
            row["case"],
            row["seconds"],
            row["seconds"] / original["seconds"],
            row["bytes"] / MB,
            row["bytes"] / original["bytes"],
            row["rss_growth"] / MB,
        )
    report.notes.append(
        "x original: time and bytes relative to loading the original in the same run; "
        "RSS growth is the server's peak over its resident set before the case."
    )
    print(report.render())
    write_json(args.json, {"run": run_metadata(mib=args.mib), "rows": rows})
    return 0


def write_weights(path: Path, size: int) -> list[dict[str, Any]]:
    """Normal float32 values (no NaN: random bytes would be, and stay unquantized)."""
    rng = np.random.default_rng(14)
    elements = size // 4 // TENSORS
    progress = Progress("writing the model", size)
    entries = []
    with path.open("wb") as out:
        for index in range(TENSORS):
            entries.append(
                {"name": f"dense{index}/kernel", "shape": [elements], "dtype": "float32"}
            )
            left = elements
            while left:
                count = min(left, MIB // 4 * 16)
                out.write(rng.standard_normal(count, dtype=np.float32).tobytes())
                progress.advance(count * 4)
                left -= count
    progress.finish("done")
    return entries


@contextmanager
def serve(folder: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    env = {
        **os.environ,
        "MODELSHELF_DATA_DIR": str(folder / "data"),
        "MODELSHELF_QUOTAS": "{}",
        "PYTHONPATH": str(REPOSITORY),
    }
    command = [sys.executable, "-m", "modelshelf.cli", "serve", "--port", str(port)]
    command += ["--log-level", "warning"]
    process = subprocess.Popen(command, cwd=folder, env=env, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise RuntimeError("the server did not start in 30 s")
        yield base, process.pid
    finally:
        process.terminate()
        process.wait(30)


def upload(url: str, weights_path: Path, entries: list[dict[str, Any]]) -> None:
    document = {
        "modelTopology": {"node": [], "library": {}, "versions": {}},
        "format": "graph-model",
        "weightsManifest": [{"paths": ["model.weights.bin"], "weights": entries}],
    }
    note(f"saving {weights_path.stat().st_size // MIB} MiB ...")
    with weights_path.open("rb") as weights:
        files = [
            ("model.json", ("model.json", json.dumps(document).encode(), "application/json")),
            ("model.weights.bin", ("model.weights.bin", weights, "application/octet-stream")),
        ]
        response = httpx.post(url, files=files, timeout=600)
    response.raise_for_status()


def measure(url: str, pid: int, cached: int) -> list[dict[str, Any]]:
    rows = [load_case("original", f"{url}/model.json", pid)]
    for view in VIEWS:
        rows.append(load_case(f"{view} first", f"{url}/model.json?{view}", pid))
        loads = [
            load_case(f"{view} cached", f"{url}/model.json?{view}", pid) for _ in range(cached)
        ]
        best = min(loads, key=lambda row: row["seconds"])
        rows.append(best)
    return rows


def load_case(case: str, model_json_url: str, pid: int) -> dict[str, Any]:
    """Load model.json and every weight file; the server's memory around it."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    before = _status(pid, "VmRSS")
    started = time.perf_counter()
    sent = 0
    with httpx.Client(timeout=600) as http:
        response = http.get(model_json_url)
        response.raise_for_status()
        sent += len(response.content)
        folder = model_json_url.split("?")[0].rsplit("/", 1)[0]
        query = model_json_url.partition("?")[2]
        for group in response.json()["weightsManifest"]:
            for path in group["paths"]:
                with http.stream("GET", f"{folder}/{path}?{query}") as weights:
                    weights.raise_for_status()
                    sent += sum(len(chunk) for chunk in weights.iter_bytes())
    seconds = time.perf_counter() - started
    growth = _status(pid, "VmHWM") - before
    note(f"{case}: {seconds:.2f} s, {sent / MB:.0f} MB, server RSS +{growth / MB:.0f} MB")
    return {
        "case": case,
        "seconds": seconds,
        "bytes": sent,
        "rss_before": before,
        "rss_growth": growth,
    }


def _status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


if __name__ == "__main__":
    sys.exit(main())
