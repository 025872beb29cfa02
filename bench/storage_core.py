"""Issue #2: a large streamed save and load through the model layer, on every backend.

One weight file of --size MiB goes through ``ModelStore.save`` (as 1 MiB chunks from a
generator) and comes back through ``ModelStore.open_weight_file``. Each backend runs in a
child process of its own (this script again, with the hidden ``--one``), so each reports its
own peak RSS. The baseline, run the same way, writes and reads the same bytes with plain
file I/O; throughputs are quoted as ratios to it because the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchkit import (
    CHUNK_BYTES,
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

from modelshelf.backends import open_backend
from modelshelf.modelstore import ModelStore, WeightUpload
from tests.modelfactory import http_saved

BACKENDS = ("file", "sqlite", "s3")
BASELINE = "raw"
RSS_GOAL_MB = 150
MODEL_NAME = "bench/storage-core"
WEIGHTS_PATH = "./model.weights.bin"
BUCKET = "bench"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.one, args.url, args.workdir, args.size * MIB, args.repeat)))
        return 0
    return run_all(args)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Stream one large weight file through ModelStore into each backend and back "
            "(issue #2). Prints save/load MB/s, their ratio to plain file I/O of the same "
            f"bytes, and each backend's peak RSS (goal: < {RSS_GOAL_MB} MB)."
        )
    )
    parser.add_argument(
        "--size", type=int, default=1024, metavar="MiB", help="weight file size (default 1024)"
    )
    parser.add_argument(
        "--backends",
        default=",".join(BACKENDS),
        help=f"comma-separated subset of {','.join(BACKENDS)} (default: all)",
    )
    parser.add_argument(
        "--repeat", type=int, default=2, help="save+load rounds per backend, best kept (2)"
    )
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument(
        "--timeout", type=float, default=1800, metavar="S", help="per backend (default 1800)"
    )
    parser.add_argument("--one", choices=(BASELINE, *BACKENDS), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    unknown = sorted(set(args.backends) - set(BACKENDS))
    if unknown:
        parser.error(f"unknown backends {unknown}; choose from {', '.join(BACKENDS)}")
    if args.size < 1 or args.repeat < 1:
        parser.error("--size and --repeat must be at least 1")
    return args


# -- the parent: one child per backend --------------------------------------------------------


def run_all(args: argparse.Namespace) -> int:
    size = args.size * MIB
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="modelshelf-bench-") as temp:
        workdir = Path(temp)
        results.append(run_child(BASELINE, "", {}, workdir, args))
        for kind in args.backends:
            with backend_url(kind, workdir) as (url, env):
                results.append(run_child(kind, url, env, workdir, args))
        # The disk's speed drifts on a shared machine: measure the baseline on both sides.
        results.append(run_child(BASELINE, "", {}, workdir, args))
    report = results_report(results, size, args.repeat)
    print(report.render())
    metadata = run_metadata(size_mib=args.size, repeat=args.repeat)
    write_json(args.json, {"run": metadata, "results": results})
    return 0 if all("error" not in result for result in results) else 1


@contextmanager
def backend_url(kind: str, workdir: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """The backend URL for ``kind`` and the environment its child needs."""
    if kind == "file":
        yield f"file://{workdir / 'file-store'}", {}
    elif kind == "sqlite":
        yield f"sqlite://{workdir / 'sqlite-store' / 'store.sqlite'}", {}
    else:
        from tests.support.seaweed import SeaweedS3

        note("starting SeaweedFS ...")
        with SeaweedS3.start(workdir / "seaweed") as server:
            server.create_bucket(BUCKET)
            yield server.backend_url(BUCKET, "storage-core", credentials=False), server.env()
            note("stopping SeaweedFS")


def run_child(
    kind: str, url: str, env: dict[str, str], workdir: Path, args: argparse.Namespace
) -> dict[str, Any]:
    child_dir = workdir / f"child-{kind}"
    child_dir.mkdir()
    command = [sys.executable, __file__, "--one", kind, "--size", str(args.size)]
    command += ["--repeat", str(args.repeat)]
    command += ["--url", url, "--workdir", str(child_dir)]
    note(f"{kind}: {args.size} MiB in a child process")
    try:
        finished = subprocess.run(
            command,
            stdout=subprocess.PIPE,
            text=True,
            timeout=args.timeout,
            env={**os.environ, **env},
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"backend": kind, "error": f"timed out after {args.timeout:.0f} s"}
    finally:
        shutil.rmtree(child_dir, ignore_errors=True)
    if finished.returncode != 0:
        return {"backend": kind, "error": f"child exited with status {finished.returncode}"}
    result: dict[str, Any] = json.loads(finished.stdout.strip().splitlines()[-1])
    return result


def results_report(results: list[dict[str, Any]], size: int, rounds: int) -> Report:
    baseline = best_baseline(results)
    report = Report(
        f"storage_core: {size // MIB} MiB weight file in 1 MiB chunks through ModelStore, "
        f"best of {rounds} ({time.strftime('%Y-%m-%d %H:%M')}, load avg "
        f"{os.getloadavg()[0]:.2f})",
        [
            "backend",
            "save MB/s",
            "save x raw",
            "load MB/s",
            "load x raw",
            "peak RSS MB",
            "RSS at start MB",
            f"RSS < {RSS_GOAL_MB} MB",
        ],
    )
    for result in results:
        if "error" in result:
            report.add(result["backend"], *["-"] * 6, result["error"])
            continue
        peak = result["peak_rss"] / MB
        report.add(
            result["backend"],
            result["save_mbps"],
            result["save_mbps"] / baseline["save_mbps"] if baseline else None,
            result["load_mbps"],
            result["load_mbps"] / baseline["load_mbps"] if baseline else None,
            peak,
            result["start_rss"] / MB,
            "yes" if peak < RSS_GOAL_MB else "NO",
        )
    report.notes.append(
        "raw = plain Python file write (+fsync) and read of the same bytes, first and last in "
        "this run;\nratios are to the better raw figure. MB = 10^6 bytes; reads come from the "
        "page cache."
    )
    return report


def best_baseline(results: list[dict[str, Any]]) -> dict[str, float] | None:
    runs = [r for r in results if r["backend"] == BASELINE and "error" not in r]
    if not runs:
        return None
    return {
        "save_mbps": max(run["save_mbps"] for run in runs),
        "load_mbps": max(run["load_mbps"] for run in runs),
    }


# -- the child: one backend -------------------------------------------------------------------


def run_one(kind: str, url: str, workdir: Path, size: int, rounds: int) -> dict[str, Any]:
    """Save and load ``rounds`` times; the best times count, the peak RSS covers them all."""
    if kind == BASELINE:
        measured = [measure_plain_files(workdir / "raw.bin", size) for _ in range(rounds)]
    else:
        measured = asyncio.run(measure_store(kind, url, size, rounds))
    save_seconds = min(times.save for times in measured)
    load_seconds = min(times.load for times in measured)
    return {
        "backend": kind,
        "size_bytes": size,
        "save_seconds": save_seconds,
        "load_seconds": load_seconds,
        "rounds": [{"save_seconds": t.save, "load_seconds": t.load} for t in measured],
        "save_mbps": megabytes_per_second(size, save_seconds),
        "load_mbps": megabytes_per_second(size, load_seconds),
        "start_rss": measured[0].start_rss,
        "peak_rss": peak_rss_bytes(),
        # Kept for reference only: inflated by the parent's RSS at spawn (see benchkit).
        "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


@dataclass(frozen=True)
class Round:
    """One save and load: seconds each, and the peak RSS before the round began."""

    save: float
    load: float
    start_rss: int


def measure_plain_files(path: Path, size: int) -> Round:
    start_rss = peak_rss_bytes()
    progress = Progress("raw write", size)
    started = time.perf_counter()
    with path.open("wb", buffering=0) as file:
        for chunk in weight_chunks(size):
            file.write(chunk)
            progress.advance(len(chunk))
        os.fsync(file.fileno())
    saved = time.perf_counter()
    progress.finish(f"{megabytes_per_second(size, saved - started):.0f} MB/s")
    progress = Progress("raw read", size)
    with path.open("rb", buffering=0) as file:
        while chunk := file.read(CHUNK_BYTES):
            progress.advance(len(chunk))
    loaded = time.perf_counter()
    progress.finish(f"{megabytes_per_second(size, loaded - saved):.0f} MB/s")
    check_size(progress.done, size)
    path.unlink()
    return Round(saved - started, loaded - saved, start_rss)


async def measure_store(kind: str, url: str, size: int, rounds: int) -> list[Round]:
    store = ModelStore(kind, open_backend(url))
    try:
        return [await measure_round(store, kind, size) for _ in range(rounds)]
    finally:
        await store.close()


async def measure_round(store: ModelStore, kind: str, size: int) -> Round:
    start_rss = peak_rss_bytes()
    progress = Progress(f"{kind} save", size)
    started = time.perf_counter()
    version = await store.save(MODEL_NAME, model_json(size), one_weight_file(size, progress))
    saved = time.perf_counter()
    progress.finish(f"{megabytes_per_second(size, saved - started):.0f} MB/s")
    progress = Progress(f"{kind} load", size)
    await read_weights(store, version.id, version.files[0].path, progress)
    loaded = time.perf_counter()
    progress.finish(f"{megabytes_per_second(size, loaded - saved):.0f} MB/s")
    check_size(progress.done, size)
    await store.remove(MODEL_NAME)  # keeps the disk bounded to one copy
    return Round(saved - started, loaded - saved, start_rss)


def model_json(size: int) -> bytes:
    """model.json as tf.io.http sends it, for one float32 tensor of ``size`` bytes."""
    entry = {"name": "bench/kernel", "shape": [size // 4], "dtype": "float32"}
    return http_saved([entry], b"").model_json


async def one_weight_file(size: int, progress: Progress) -> AsyncIterator[WeightUpload]:
    yield WeightUpload(WEIGHTS_PATH, metered_chunks(size, progress))


async def metered_chunks(size: int, progress: Progress) -> AsyncIterator[bytes]:
    for chunk in weight_chunks(size):
        progress.advance(len(chunk))
        yield chunk


async def read_weights(store: ModelStore, version_id: str, path: str, progress: Progress) -> None:
    _stored, stream = await store.open_weight_file(MODEL_NAME, version_id, path)
    try:
        async for chunk in stream:
            progress.advance(len(chunk))
    finally:
        await stream.aclose()


def check_size(read: int, size: int) -> None:
    if read != size:
        raise RuntimeError(f"read back {read} bytes of {size}")


if __name__ == "__main__":
    sys.exit(main())
