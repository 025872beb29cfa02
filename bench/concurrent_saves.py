"""Issue 8, item 7: peak RSS of the server while many large saves run at once, per store.

--concurrency (8) streaming multipart POSTs of --size MiB (128) each, as tf.io.http sends them,
go at once to a fresh ``python -m modelshelf.service`` subprocess serving one store (file,
indexeddb = sqlite, s3 = a SeaweedFS the script starts), from an httpx.AsyncClient in this
process. The server's peak RSS is the VmHWM of its pid after the saves; MB/s is the total weight
bytes over the wall time of the whole batch. Baselines measured in the same run: each server's
idle RSS (VmHWM before the first save) and the file store's figures (ratios in the table).
SeaweedFS runs in a process of its own and is not counted. ``--env`` passes settings to the
servers, e.g. ``--env MODELSHELF_UPLOAD_BUFFER_BYTES=67108864`` or ``--env MALLOC_ARENA_MAX=2``.
Goal: peak RSS < 150 MB on every store, throughput not worse than before beyond noise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
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
    free_port,
    megabytes_per_second,
    note,
    peak_rss_bytes,
    run_metadata,
    write_json,
)

sys.path.insert(0, str(REPOSITORY))  # run as a script: the project's packages live there

from service_throughput import multipart_body

from tests.support.seaweed import terminate as stop

STORES = ("file", "indexeddb", "s3")
BASELINE_STORE = "file"
RSS_GOAL_MB = 150
BUCKET = "bench"
READY_TIMEOUT_SECONDS = 30.0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="modelshelf-bench-") as temp:
        results = run(args, Path(temp))
    print(report(results, args).render())
    metadata = run_metadata(
        concurrency=args.concurrency, size_mib=args.size, repeat=args.repeat, env=args.env
    )
    write_json(args.json, {"run": metadata, "results": results})
    return 0 if all(row["peak_rss"] / MB < RSS_GOAL_MB for row in results.values()) else 1


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=8, help="saves at once (8)")
    parser.add_argument("--size", type=int, default=128, metavar="MiB", help="per save (128)")
    parser.add_argument("--repeat", type=int, default=1, help="batches per store, best MB/s (1)")
    parser.add_argument("--stores", default=",".join(STORES), help="subset of file,indexeddb,s3")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment of every server, e.g. MALLOC_ARENA_MAX=2 (repeatable)",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--timeout", type=float, default=600, metavar="S", help="per save (600)")
    args = parser.parse_args(argv)
    args.stores = [name.strip() for name in args.stores.split(",") if name.strip()]
    if unknown := sorted(set(args.stores) - set(STORES)):
        parser.error(f"unknown stores {unknown}; choose from {', '.join(STORES)}")
    if args.concurrency < 1 or args.size < 1 or args.repeat < 1:
        parser.error("--concurrency, --size and --repeat must be at least 1")
    return args


def run(args: argparse.Namespace, workdir: Path) -> dict[str, dict[str, Any]]:
    extra = dict(item.split("=", 1) for item in args.env)
    results: dict[str, dict[str, Any]] = {}
    for store in args.stores:
        with (
            store_url(store, workdir) as (url, env),
            serving(store, url, workdir / f"server-{store}", {**env, **extra}) as server,
        ):
            results[store] = measure(server, store, args)
    return results


@contextmanager
def store_url(store: str, workdir: Path) -> Iterator[tuple[str, dict[str, str]]]:
    if store == "file":
        yield f"file://{workdir / 'file-store'}", {}
    elif store == "indexeddb":
        yield f"sqlite://{workdir / 'indexeddb.sqlite'}", {}
    else:
        from tests.support.seaweed import SeaweedS3

        note("starting SeaweedFS ...")
        with SeaweedS3.start(workdir / "seaweed") as seaweed:
            seaweed.create_bucket(BUCKET)
            yield seaweed.backend_url(BUCKET, "concurrent", credentials=False), seaweed.env()


@contextmanager
def serving(store: str, url: str, folder: Path, env: dict[str, str]) -> Iterator[Server]:
    """``python -m modelshelf.service`` with one store, on a free port, once it answers."""
    folder.mkdir(parents=True)
    port = free_port()
    environment = {
        **os.environ,
        **env,
        "MODELSHELF_STORES": json.dumps({store: url}),
        "MODELSHELF_DATA_DIR": str(folder),
        "MODELSHELF_PORT": str(port),
    }
    log_path = folder / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "modelshelf.service", "--port", str(port)],
            cwd=REPOSITORY,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Server(f"http://127.0.0.1:{port}", process, log_path)
    try:
        wait_until_answering(server)
        yield server
    finally:
        stop(process)


@dataclass(frozen=True)
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path


def wait_until_answering(server: Server) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while True:
        try:
            httpx.get(f"{server.url}/healthz", timeout=2).raise_for_status()
            return
        except httpx.HTTPError:
            if server.process.poll() is not None or time.monotonic() > deadline:
                tail = server.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"the server did not start; its log:\n{tail}") from None
            time.sleep(0.1)


def measure(server: Server, store: str, args: argparse.Namespace) -> dict[str, Any]:
    idle_rss = peak_rss_bytes(server.process.pid)
    size = args.size * MIB
    seconds = [
        asyncio.run(save_batch(f"{server.url}/v1/models/{store}/bench/c", store, size, args))
        for _ in range(args.repeat)
    ]
    return {
        "idle_rss": idle_rss,
        "peak_rss": peak_rss_bytes(server.process.pid),
        "seconds": min(seconds),
        "mbps": megabytes_per_second(size * args.concurrency, min(seconds)),
    }


async def save_batch(base_url: str, store: str, size: int, args: argparse.Namespace) -> float:
    """``--concurrency`` saves at once; the wall seconds of the whole batch."""
    progress = Progress(f"{store} x{args.concurrency}", size * args.concurrency)
    limits = httpx.Limits(max_connections=args.concurrency)
    timeout = httpx.Timeout(args.timeout, connect=10)
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:
        started = time.perf_counter()
        await asyncio.gather(
            *(
                post_model(client, f"{base_url}{index}", size, progress)
                for index in range(args.concurrency)
            )
        )
        seconds = time.perf_counter() - started
    progress.finish(f"{megabytes_per_second(size * args.concurrency, seconds):.0f} MB/s")
    return seconds


async def post_model(client: httpx.AsyncClient, url: str, size: int, progress: Progress) -> None:
    boundary = f"----modelshelf-bench-{secrets.token_hex(8)}"
    length, chunks = multipart_body(boundary, size, progress)  # what service_throughput sends
    body = _async_chunks(chunks)
    headers = {
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Content-Length": str(length),
    }
    response = await client.post(url, content=body, headers=headers)
    if response.status_code != 201:
        raise RuntimeError(f"{url}: HTTP {response.status_code}: {response.text[:500]}")


async def _async_chunks(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


def report(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> Report:
    baseline = results.get(BASELINE_STORE)
    table = Report(
        f"concurrent_saves: {args.concurrency} x {args.size} MiB saves at once, fresh server "
        f"per store ({time.strftime('%Y-%m-%d %H:%M')}, load avg {os.getloadavg()[0]:.2f})",
        [
            "store",
            "idle RSS MB",
            "peak RSS MB",
            "peak - idle MB",
            "x file",
            "MB/s",
            "MB/s x file",
            f"< {RSS_GOAL_MB} MB",
        ],
    )
    for store, row in results.items():
        peak, growth = row["peak_rss"] / MB, (row["peak_rss"] - row["idle_rss"]) / MB
        base_growth = (baseline["peak_rss"] - baseline["idle_rss"]) / MB if baseline else None
        table.add(
            store,
            row["idle_rss"] / MB,
            peak,
            growth,
            growth / base_growth if base_growth else None,
            row["mbps"],
            row["mbps"] / baseline["mbps"] if baseline else None,
            "yes" if peak < RSS_GOAL_MB else "NO",
        )
    met = all(row["peak_rss"] / MB < RSS_GOAL_MB for row in results.values())
    table.notes.append(
        f"idle = the server's VmHWM before the first save; MB = 10^6 bytes; MB/s = all weight "
        f"bytes over the batch's wall time.\nGoal (peak RSS < {RSS_GOAL_MB} MB on every store): "
        f"{'met' if met else 'NOT met'}."
    )
    if args.env:
        table.notes.append(f"server environment: {' '.join(args.env)}")
    return table


if __name__ == "__main__":
    sys.exit(main())
