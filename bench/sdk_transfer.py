"""Issue #4: the SDK's save and load of a large model, streamed from and to files.

A TF.js folder (model.json and one --size MiB weight file) goes to the service with
``Client.push`` and comes back with ``Client.pull``. The baselines move the same bytes with
plain httpx: the same multipart body (same Content-Length), read from the files in 1 MiB
chunks by a generator, POSTed to the same route; and a streamed GET of the weight file's URL,
written to a file with ``iter_bytes(1 MiB)``. Goals: SDK/httpx >= 0.8 each way, and a client
peak RSS under 150 MB for the SDK.

The service runs in a subprocess. Every measured transfer runs in a child process of its own
(this script again, with the hidden ``--one``), so the peak RSS (VmHWM) it reports is the
transfer's own. Each figure is the best of --repeat runs, the SDK's and httpx's interleaved.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from benchkit import (
    MB,
    MIB,
    REPOSITORY,
    Progress,
    Report,
    megabytes_per_second,
    note,
    peak_rss_bytes,
    run_metadata,
    weight_chunks,
    write_json,
)

sys.path.insert(0, str(REPOSITORY))  # run as a script: the project's packages live there

STORES = ("file", "indexeddb")
SIDES = ("sdk", "httpx")
DIRECTIONS = ("save", "load")
MODEL_NAME = "bench/sdk"
WEIGHTS_FILE = "model.weights.bin"
RATIO_GOAL = 0.8
RSS_GOAL_MB = 150
CHUNK_BYTES = MIB


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args)))
        return 0
    with tempfile.TemporaryDirectory(prefix="modelshelf-bench-") as temp:
        results = run_all(args, Path(temp))
    reports = [throughput_report(results, args), rss_report(results, args)]
    print("\n\n".join(report.render() for report in reports))
    metadata = run_metadata(size_mib=args.size, repeat=args.repeat, stores=args.stores)
    write_json(args.json, {"run": metadata, "results": results})
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Save a TF.js folder with the SDK (Client.push) and load it back into a folder "
            "(Client.pull), against plain httpx streaming the same bytes from and to files "
            f"(issue #4). Goals: SDK/httpx >= {RATIO_GOAL} each way, SDK client peak RSS "
            f"< {RSS_GOAL_MB} MB."
        )
    )
    parser.add_argument(
        "--size", type=int, default=1024, metavar="MiB", help="weight file size (default 1024)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure, best kept (3)")
    parser.add_argument(
        "--stores", default="file", help=f"subset of {','.join(STORES)} (default: file)"
    )
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument(
        "--timeout", type=float, default=600, metavar="S", help="per transfer (default 600)"
    )
    kinds = [f"{side}-{direction}" for side in SIDES for direction in DIRECTIONS]
    parser.add_argument("--one", choices=kinds, help=argparse.SUPPRESS)
    parser.add_argument("--server", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--weight-url", help=argparse.SUPPRESS)
    parser.add_argument("--label", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.stores = [name.strip() for name in args.stores.split(",") if name.strip()]
    if unknown := sorted(set(args.stores) - set(STORES)):
        parser.error(f"unknown stores {unknown}; choose from {', '.join(STORES)}")
    if args.size < 1 or args.repeat < 1:
        parser.error("--size and --repeat must be at least 1")
    return args


# -- the parent: the model folder, the service, one child per transfer -----------------------


def run_all(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    # Imported here, not at the top: the children must not carry their imports (numpy).
    from service_throughput import serve_modelshelf

    source = write_model_folder(workdir / "model", args.size * MIB)
    http = httpx.Client(timeout=httpx.Timeout(args.timeout, connect=10))
    with http, serve_modelshelf(workdir / "service", {}) as service:
        note(f"service at {service.url}; stores {', '.join(args.stores)}")
        bench = Bench(service.url, http, source, workdir, args)
        return {store: bench.measure_store(store) for store in args.stores}


def write_model_folder(folder: Path, size: int) -> Path:
    """A TF.js folder: model.json naming one float32 tensor, its weight file written in chunks."""
    folder.mkdir(parents=True)
    (folder / "model.json").write_bytes(model_json(size))
    progress = Progress(f"writing {WEIGHTS_FILE}", size)
    with (folder / WEIGHTS_FILE).open("wb") as file:
        for chunk in weight_chunks(size):
            file.write(chunk)
            progress.advance(len(chunk))
    progress.finish("done")
    return folder


def model_json(size: int) -> bytes:
    from tests.modelfactory import http_saved

    entry = {"name": "bench/kernel", "shape": [size // 4], "dtype": "float32"}
    document = http_saved([entry], b"").document
    document["weightsManifest"][0]["paths"] = [WEIGHTS_FILE]
    return json.dumps(document).encode()


Runs = dict[str, list[dict[str, Any]]]  # side -> one child's figures per run


@dataclass
class Bench:
    """The runs against one running service."""

    server: str
    http: httpx.Client
    source: Path
    workdir: Path
    args: argparse.Namespace

    def measure_store(self, store: str) -> dict[str, Any]:
        model = f"{store}://{MODEL_NAME}"
        saves: Runs = {side: [] for side in SIDES}
        for attempt, side in self.interleaved():
            self.remove(store)  # one stored copy at a time, and each save starts afresh
            saves[side].append(self.child(f"{side}-save", model, f"{store} {attempt}"))
            self.check_saved(store)
        weight_url = self.weight_url(store)
        loads: Runs = {side: [] for side in SIDES}
        for attempt, side in self.interleaved():
            label = f"{store} {attempt}"
            loads[side].append(self.child(f"{side}-load", model, label, weight_url))
        self.remove(store)
        return {"size_bytes": self.args.size * MIB, "save": saves, "load": loads}

    def interleaved(self) -> Iterator[tuple[str, str]]:
        """(attempt tag, side) in run order; the side that goes first alternates."""
        repeat = self.args.repeat
        for attempt in range(repeat):
            for side in SIDES if attempt % 2 == 0 else SIDES[::-1]:
                yield f"{attempt + 1}/{repeat}", side

    def child(self, kind: str, model: str, label: str, weight_url: str = "") -> dict[str, Any]:
        """Run one transfer in a fresh process; its figures, from its last line of output."""
        folder = self.source if kind.endswith("save") else self.workdir / f"pulled-{kind}"
        command = [sys.executable, __file__, "--one", kind, "--server", self.server]
        command += ["--model", model, "--folder", str(folder), "--label", f"{kind} {label}"]
        command += ["--weight-url", weight_url, "--timeout", str(self.args.timeout)]
        command += ["--size", str(self.args.size)]
        try:
            finished = subprocess.run(
                command, stdout=subprocess.PIPE, text=True, timeout=self.args.timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"{kind} {label}: timed out after {self.args.timeout:g} s") from None
        finally:
            if kind.endswith("load"):
                shutil.rmtree(folder, ignore_errors=True)
        if finished.returncode != 0:
            raise RuntimeError(f"{kind} {label}: the child exited with {finished.returncode}")
        figures: dict[str, Any] = json.loads(finished.stdout.strip().splitlines()[-1])
        return figures

    def remove(self, store: str) -> None:
        response = self.http.delete(f"{self.server}/v1/models/{store}/{MODEL_NAME}")
        if response.status_code not in (200, 404):
            raise RuntimeError(f"removing {store}://{MODEL_NAME}: HTTP {response.status_code}")

    def check_saved(self, store: str) -> None:
        response = self.http.get(f"{self.server}/v1/models/{store}/{MODEL_NAME}")
        response.raise_for_status()
        stored = response.json()["versions"][-1]["files"][0]["size"]
        if stored != self.args.size * MIB:
            raise RuntimeError(f"{store}: stored {stored} bytes of {self.args.size * MIB}")

    def weight_url(self, store: str) -> str:
        """The weight file's URL, as TF.js resolves it from the served model.json."""
        from service_throughput import weight_url

        return weight_url(self.http, f"{self.server}/v1/models/{store}/{MODEL_NAME}/model.json")


# -- the child: one transfer ------------------------------------------------------------------


@dataclass
class Stopwatch:
    """A transfer's seconds, CPU seconds and minor page faults; the peak RSS before it began."""

    start_rss: int
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    minor_faults: int = 0


@contextmanager
def timed() -> Iterator[Stopwatch]:
    watch = Stopwatch(peak_rss_bytes())
    faults, cpu, started = minor_faults(), time.process_time(), time.perf_counter()
    yield watch
    watch.seconds = time.perf_counter() - started
    watch.cpu_seconds = time.process_time() - cpu
    watch.minor_faults = minor_faults() - faults


def minor_faults() -> int:
    """This process's minor page faults so far, all threads."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def run_one(args: argparse.Namespace) -> dict[str, Any]:
    watch = TRANSFERS[args.one](args)
    return {
        "kind": args.one,
        "size_bytes": args.size * MIB,
        "seconds": watch.seconds,
        "mbps": megabytes_per_second(args.size * MIB, watch.seconds),
        "cpu_seconds": watch.cpu_seconds,
        "minor_faults": watch.minor_faults,
        "start_rss": watch.start_rss,
        "peak_rss": peak_rss_bytes(),
    }


def sdk_save(args: argparse.Namespace) -> Stopwatch:
    from modelshelf import Client

    progress = Progress(args.label, args.size * MIB)
    with Client(args.server, timeout=args.timeout) as client, timed() as watch:
        client.push(args.folder, args.model, progress=sdk_progress(progress))
    progress.finish(f"{megabytes_per_second(args.size * MIB, watch.seconds):.0f} MB/s")
    return watch


def sdk_load(args: argparse.Namespace) -> Stopwatch:
    from modelshelf import Client

    progress = Progress(args.label, args.size * MIB)
    with Client(args.server, timeout=args.timeout) as client, timed() as watch:
        client.pull(args.model, args.folder, progress=sdk_progress(progress))
    check_size(args.folder / WEIGHTS_FILE, args.size * MIB)
    progress.finish(f"{megabytes_per_second(args.size * MIB, watch.seconds):.0f} MB/s")
    return watch


def sdk_progress(progress: Progress) -> Callable[[int, int | None], None]:
    """The SDK reports bytes done so far; Progress counts increments."""

    def advance(done: int, _total: int | None) -> None:
        progress.advance(done - progress.done)

    return advance


def httpx_save(args: argparse.Namespace) -> Stopwatch:
    """The SDK's multipart body, byte for byte but for the boundary, from plain httpx."""
    boundary = f"----modelshelf-{secrets.token_hex(12)}"  # as long as the SDK's
    progress = Progress(args.label, args.size * MIB)
    length, body = multipart_body(args.folder, boundary, progress)
    headers = {
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Content-Length": str(length),
    }
    url = f"{args.server}{model_path(args.model)}"
    with httpx.Client(timeout=args.timeout) as client, timed() as watch:
        response = client.post(url, content=body, headers=headers)
    if response.status_code != 201:
        raise RuntimeError(f"{args.label}: HTTP {response.status_code}: {response.text[:500]}")
    progress.finish(f"{megabytes_per_second(args.size * MIB, watch.seconds):.0f} MB/s")
    return watch


def multipart_body(folder: Path, boundary: str, progress: Progress) -> tuple[int, Iterator[bytes]]:
    """The body's length and a generator of its bytes, the weights read from the file."""
    weights = folder / WEIGHTS_FILE
    head = (
        part_head(boundary, "model.json", "application/json")
        + (folder / "model.json").read_bytes()
        + b"\r\n"
        + part_head(boundary, WEIGHTS_FILE, "application/octet-stream")
    )
    tail = f"\r\n--{boundary}--\r\n".encode()

    def chunks() -> Iterator[bytes]:
        yield head
        with weights.open("rb") as file:
            while chunk := file.read(CHUNK_BYTES):
                progress.advance(len(chunk))
                yield chunk
        yield tail

    return len(head) + weights.stat().st_size + len(tail), chunks()


def part_head(boundary: str, name: str, content_type: str) -> bytes:
    return (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()


def model_path(model: str) -> str:
    store, _separator, name = model.partition("://")
    return f"/v1/models/{store}/{name}"


def httpx_load(args: argparse.Namespace) -> Stopwatch:
    progress = Progress(args.label, args.size * MIB)
    args.folder.mkdir(parents=True, exist_ok=True)
    destination = args.folder / WEIGHTS_FILE
    with httpx.Client(timeout=args.timeout) as client, timed() as watch:
        download(client, args.weight_url, destination, progress)
    check_size(destination, args.size * MIB)
    progress.finish(f"{megabytes_per_second(args.size * MIB, watch.seconds):.0f} MB/s")
    return watch


def download(client: httpx.Client, url: str, destination: Path, progress: Progress) -> None:
    with client.stream("GET", url) as response, destination.open("wb") as file:
        if response.status_code != 200:
            raise RuntimeError(f"{progress.label}: HTTP {response.status_code} for {url}")
        for chunk in response.iter_bytes(CHUNK_BYTES):
            file.write(chunk)
            progress.advance(len(chunk))


def check_size(path: Path, size: int) -> None:
    if (written := path.stat().st_size) != size:
        raise RuntimeError(f"{path} has {written} bytes, not {size}")


TRANSFERS: dict[str, Callable[[argparse.Namespace], Stopwatch]] = {
    "sdk-save": sdk_save,
    "httpx-save": httpx_save,
    "sdk-load": sdk_load,
    "httpx-load": httpx_load,
}


# -- the report -------------------------------------------------------------------------------


def throughput_report(results: dict[str, Any], args: argparse.Namespace) -> Report:
    report = Report(
        f"sdk_transfer: {args.size} MiB model from and to files, best of {args.repeat} "
        f"({time.strftime('%Y-%m-%d %H:%M')}, load avg {os.getloadavg()[0]:.2f})",
        [
            "transfer",
            "SDK MB/s",
            "httpx MB/s",
            "SDK/httpx",
            f">= {RATIO_GOAL}",
            "CPU ms/MiB SDK",
            "httpx",
            "faults/MiB SDK",
            "httpx",
        ],
    )
    for store, measured in results.items():
        for direction in DIRECTIONS:
            report.add(f"{direction} {store}", *throughput_row(measured[direction]))
    report.notes.append(
        "httpx = plain httpx streaming the same bytes from / to files in 1 MiB chunks. MB = "
        "10^6 bytes.\nCPU ms/MiB (all the client's threads) and faults/MiB (the client's "
        "minor page faults) are from the fastest run."
    )
    return report


def throughput_row(runs: Runs) -> list[Any]:
    sdk, baseline = (max(runs[side], key=lambda run: run["mbps"]) for side in SIDES)
    ratio = sdk["mbps"] / baseline["mbps"]
    return [
        sdk["mbps"],
        baseline["mbps"],
        ratio,
        _verdict(ratio >= RATIO_GOAL),
        *(run["cpu_seconds"] * 1000 * MIB / run["size_bytes"] for run in (sdk, baseline)),
        *(round(run["minor_faults"] * MIB / run["size_bytes"]) for run in (sdk, baseline)),
    ]


def rss_report(results: dict[str, Any], args: argparse.Namespace) -> Report:
    report = Report(
        f"client peak RSS (VmHWM), a fresh process per transfer, highest of {args.repeat}",
        ["transfer", "SDK MB", "SDK at start MB", f"< {RSS_GOAL_MB} MB", "httpx MB"],
    )
    for store, measured in results.items():
        for direction in DIRECTIONS:
            runs = measured[direction]
            sdk, baseline = (max(run["peak_rss"] for run in runs[side]) / MB for side in SIDES)
            start = max(run["start_rss"] for run in runs["sdk"]) / MB
            report.add(f"{direction} {store}", sdk, start, _verdict(sdk < RSS_GOAL_MB), baseline)
    report.notes.append("at start = after the imports and the client's setup, before the transfer.")
    return report


def _verdict(met: bool) -> str:
    return "yes" if met else "NO"


if __name__ == "__main__":
    sys.exit(main())
