"""Issue 12, item 5: the server's memory under many concurrent small loads, per store.

For each store (file, indexeddb = sqlite, localstorage = sqlite, s3 = a SeaweedFS the script
starts), two fresh ``python -m modelshelf.service`` subprocesses serving that one store:

(a) one large transfer: a --large MiB (256) streaming multipart save as tf.io.http sends it,
    then one GET of its weight file to /dev/null. The server's peak RSS (VmHWM) after both
    is the baseline: what one big transfer costs on this store.
(b) many small loads: a --size MiB (2) model is saved, then loaded over --connections (50)
    keep-alive connections for --seconds (10), GET model.json and GET its weight file
    alternately (bench/small_model_load.py's load generators: wrk with its Lua script, or
    the asyncio/httpx fallback). The server's VmHWM after the load.

Idle RSS is the (b) server's VmHWM after the small save, before the load. Goal: (b) <= (a)
and (b) <= 150 MB on every store. MODELSHELF_QUOTAS is set to {} so the localstorage store
(10 MiB quota by default) takes the large save. SeaweedFS runs in a process of its own and is
not counted. ``--env`` passes settings or malloc variables to the servers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
from benchkit import MB, MIB, REPOSITORY, Report, note, peak_rss_bytes, run_metadata, write_json

sys.path.insert(0, str(REPOSITORY))  # run as a script: the project's packages live there

from concurrent_saves import Server, serving
from service_throughput import download, post_model, weight_url
from small_model_load import httpx_load, wrk_load

STORES = ("file", "indexeddb", "localstorage", "s3")
URL_KINDS = {"file": "file", "indexeddb": "sqlite", "localstorage": "sqlite", "s3": "s3"}
RSS_GOAL_MB = 150
BUCKET = "bench"
LARGE_NAME = "bench/large"
SMALL_NAME = "bench/small"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="modelshelf-bench-") as temp:
        results = run(args, Path(temp))
    print(report(results, args).render())
    metadata = run_metadata(
        large_mib=args.large,
        size_mib=args.size,
        connections=args.connections,
        seconds=args.seconds,
        warmup_seconds=args.warmup,
        loadgen=args.loadgen,
        wrk_threads=args.threads if args.loadgen == "wrk" else None,
        env=args.env,
    )
    write_json(args.json, {"run": metadata, "results": results})
    return 0 if all(met(row) for row in results.values()) else 1


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Exit code 1 if a goal is missed, or if any small load got a non-2xx answer "
        "or a socket error.",
    )
    parser.add_argument("--stores", default=",".join(STORES), help=f"subset of {','.join(STORES)}")
    parser.add_argument("--large", type=int, default=256, metavar="MiB", help="(a) size (256)")
    parser.add_argument("--size", type=int, default=2, metavar="MiB", help="(b) model size (2)")
    parser.add_argument("--connections", type=int, default=50, metavar="N", help="(b) (50)")
    parser.add_argument("--seconds", type=int, default=10, metavar="S", help="(b) load (10)")
    parser.add_argument(
        "--warmup", type=int, default=2, metavar="S", help="(b) untimed load first (2; 0 skips)"
    )
    parser.add_argument(
        "--loadgen",
        choices=["auto", "wrk", "httpx"],
        default="auto",
        help="load generator for (b): wrk if installed (auto), or the asyncio/httpx one",
    )
    parser.add_argument("--threads", type=int, default=2, metavar="N", help="wrk threads (2)")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment of every server, e.g. MALLOC_ARENA_MAX=2 (repeatable)",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    args.stores = [name.strip() for name in args.stores.split(",") if name.strip()]
    if unknown := sorted(set(args.stores) - set(STORES)):
        parser.error(f"unknown stores {unknown}; choose from {', '.join(STORES)}")
    if min(args.large, args.size, args.connections, args.seconds, args.threads) < 1:
        parser.error("--large, --size, --connections, --seconds and --threads must be >= 1")
    if args.warmup < 0:
        parser.error("--warmup must be at least 0")
    if args.loadgen == "auto":
        args.loadgen = "wrk" if _has_wrk() else "httpx"
    elif args.loadgen == "wrk" and not _has_wrk():
        parser.error("wrk is not installed (apt-get install wrk), try --loadgen httpx")
    return args


def run(args: argparse.Namespace, workdir: Path) -> dict[str, dict[str, Any]]:
    extra = dict(item.split("=", 1) for item in args.env)
    results: dict[str, dict[str, Any]] = {}
    with ExitStack() as stack:
        seaweed = stack.enter_context(seaweed_server(workdir)) if "s3" in args.stores else None
        for store in args.stores:
            row: dict[str, Any] = {}
            for phase, measure in (("large", measure_large), ("small", measure_small)):
                url, env = store_url(store, workdir / f"{store}-{phase}", seaweed, phase)
                env = {**env, "MODELSHELF_QUOTAS": "{}", **extra}
                with serving(store, url, workdir / f"server-{store}-{phase}", env) as server:
                    row[phase] = measure(server, store, workdir, args)
            results[store] = row
    return results


@contextmanager
def seaweed_server(workdir: Path) -> Iterator[Any]:
    from tests.support.seaweed import SeaweedS3

    note("starting SeaweedFS ...")
    with SeaweedS3.start(workdir / "seaweed") as seaweed:
        seaweed.create_bucket(BUCKET)
        yield seaweed


def store_url(store: str, folder: Path, seaweed: Any, phase: str) -> tuple[str, dict[str, str]]:
    """The store's backend URL (a fresh place per phase) and the environment it needs."""
    kind = URL_KINDS[store]
    if kind == "file":
        return f"file://{folder}", {}
    if kind == "sqlite":
        folder.mkdir(parents=True, exist_ok=True)
        return f"sqlite://{folder / f'{store}.sqlite'}", {}
    return seaweed.backend_url(BUCKET, f"loads-{phase}", credentials=False), seaweed.env()


def measure_large(
    server: Server, store: str, workdir: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """(a) one large save, then one load of its weight file; VmHWM around each."""
    size = args.large * MIB
    start_rss = peak_rss_bytes(server.process.pid)
    with httpx.Client(timeout=httpx.Timeout(600, connect=10)) as client:
        url = f"{server.url}/v1/models/{store}/{LARGE_NAME}"
        save_seconds, answer = post_model(client, url, size, f"{store} save {args.large} MiB")
        after_save = peak_rss_bytes(server.process.pid)
        weights = weight_url(client, answer["loadUrl"])
        load_seconds = download(client, weights, size, f"{store} load {args.large} MiB")
    return {
        "start_rss": start_rss,
        "after_save_rss": after_save,
        "peak_rss": peak_rss_bytes(server.process.pid),
        "save_mbps": size / MB / save_seconds,
        "load_mbps": size / MB / load_seconds,
    }


def measure_small(
    server: Server, store: str, workdir: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """(b) a small save, then --connections loading it at once for --seconds."""
    with httpx.Client(timeout=60) as client:
        url = f"{server.url}/v1/models/{store}/{SMALL_NAME}"
        _seconds, answer = post_model(client, url, args.size * MIB, f"{store} save {args.size} MiB")
        urls = [answer["loadUrl"], weight_url(client, answer["loadUrl"])]
        for url in urls:
            client.get(url).raise_for_status()
    idle_rss = peak_rss_bytes(server.process.pid)
    generate = wrk_load if args.loadgen == "wrk" else httpx_load
    if args.warmup:
        note(f"{store}: {args.warmup} s warm-up")
        generate(urls, args.connections, args.warmup, args, workdir)
    note(f"{store}: {args.seconds} s at {args.connections} connections ({args.loadgen})")
    load = generate(urls, args.connections, args.seconds, args, workdir)
    note(
        f"  {load['ok'] / load['seconds']:.0f} req/s, p99 {load['p99_ms']:.0f} ms, "
        f"non-2xx {load['non_2xx']}, socket errors {load['socket_errors']}"
    )
    return {"idle_rss": idle_rss, "peak_rss": peak_rss_bytes(server.process.pid), "load": load}


def met(row: dict[str, Any]) -> bool:
    small, large = row["small"], row["large"]
    failed = small["load"]["non_2xx"] + small["load"]["socket_errors"]
    return not failed and small["peak_rss"] <= large["peak_rss"] and _within_goal(small)


def _within_goal(phase: dict[str, Any]) -> bool:
    return bool(phase["peak_rss"] / MB <= RSS_GOAL_MB)


def report(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> Report:
    table = Report(
        f"concurrent_loads: (a) one {args.large} MiB save + load, (b) {args.connections} "
        f"connections loading a {args.size} MiB model for {args.seconds} s, fresh server each "
        f"({time.strftime('%Y-%m-%d %H:%M')}, load avg {os.getloadavg()[0]:.2f})",
        [
            "store",
            "idle RSS MB",
            "(a) peak MB",
            "(a) after save MB",
            "(b) peak MB",
            "(b) - idle MB",
            "(b) <= (a)",
            f"(b) <= {RSS_GOAL_MB} MB",
            "(b) req/s",
            "non-2xx+errors",
            "(a) load MB/s",
        ],
    )
    for store, row in results.items():
        small, large = row["small"], row["large"]
        table.add(
            store,
            small["idle_rss"] / MB,
            large["peak_rss"] / MB,
            large["after_save_rss"] / MB,
            small["peak_rss"] / MB,
            (small["peak_rss"] - small["idle_rss"]) / MB,
            "yes" if small["peak_rss"] <= large["peak_rss"] else "NO",
            "yes" if _within_goal(small) else "NO",
            small["load"]["ok"] / small["load"]["seconds"],
            small["load"]["non_2xx"] + small["load"]["socket_errors"],
            large["load_mbps"],
        )
    table.notes.append(
        "RSS = the server's VmHWM (peak resident set), MB = 10^6 bytes; idle = after the small "
        "save, before the load.\n(a) after save = VmHWM after the large save, before its load."
    )
    if args.env:
        table.notes.append(f"server environment: {' '.join(args.env)}")
    return table


def _has_wrk() -> bool:
    return shutil.which("wrk") is not None


if __name__ == "__main__":
    sys.exit(main())
