"""Small model under concurrency: many clients loading a 2 MiB model at once, req/s and latency.

A --size MiB model (2; one float32 weight, model.json as tf.io.http sends it, weight path
./model.weights.bin) is saved to each server, then loaded over --connections (50) keep-alive
connections for --seconds (15): GET model.json and GET the weight file the served model.json
names (resolved against the model.json URL; modelshelf rewrites the path), alternately. The
servers, each a fresh subprocess on a free port, measured one at a time:

  - modelshelf, ``python -m modelshelf.cli serve --port PORT`` in a temp working directory with
    MODELSHELF_DATA_DIR=<temp dir> (the default stores), model in the ``file`` store, then a
    fresh one with the model in ``indexeddb``;
  - the baseline, measured in the same run: bench/naive_app.py (FastAPI, UploadFile and
    FileResponse) on ``python -m uvicorn --http h11``, uvicorn's other settings at the defaults
    ``modelshelf serve`` uses too (log level info, access log on, keep-alive 5 s).

The load generator is wrk (``apt-get install wrk``) with a Lua script that counts responses by
status, else a small asyncio one on httpx with a fixed connection pool (--loadgen). req/s
counts 2xx responses only; non-2xx responses and socket errors are reported beside it, and
the script exits 1 if there were any. Peak RSS is the server's VmHWM after the load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
from benchkit import MB, MIB, REPOSITORY, Report, note, peak_rss_bytes, run_metadata, write_json

sys.path.insert(0, str(REPOSITORY))  # run as a script: service_throughput's imports live there

from service_throughput import Server, post_model, serving, weight_url

MODEL_NAME = "bench/small"
BASELINE = "naive app"
WRK_MARKER = "SMALL_MODEL_LOAD_JSON "
# The Lua side of wrk: alternate the two GETs, count responses by status in every thread, and
# print the totals as one JSON line for this script.
WRK_SCRIPT = """
local paths = {%(paths)s}
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  prepared = {wrk.format("GET", paths[1]), wrk.format("GET", paths[2])}
  sent = 0
  statuses = {}
end

function request()
  sent = sent + 1
  return prepared[(sent - 1) %% 2 + 1]
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      counts[#counts + 1] = string.format('"%%d":%%d', status, count)
    end
  end
  local e = summary.errors
  io.write(string.format(
    '%(marker)s{"duration_us":%%d,"responses":%%d,"bytes":%%d,"statuses":[{%%s}],' ..
    '"socket_errors":{"connect":%%d,"read":%%d,"write":%%d,"timeout":%%d},' ..
    '"p50_us":%%d,"p99_us":%%d,"max_us":%%d}\\n',
    summary.duration, summary.requests, summary.bytes, table.concat(counts, "},{"),
    e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="modelshelf-bench-") as temp:
        results = run(args, Path(temp))
    print(report(results, args).render())
    metadata = run_metadata(
        size_mib=args.size,
        seconds=args.seconds,
        connections=args.connections,
        warmup_seconds=args.warmup,
        loadgen=args.loadgen,
        wrk_threads=args.threads if args.loadgen == "wrk" else None,
    )
    write_json(args.json, {"run": metadata, "results": results})
    failed = sum(row["non_2xx"] + row["socket_errors"] for row in results.values())
    return 1 if failed else 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Small model under concurrency: req/s, p50 and p99 latency of loading a small "
            "model (GET model.json, then its weight file) from modelshelf's file and "
            "indexeddb stores over many connections, against a naive FastAPI app "
            "(UploadFile + FileResponse) measured in the same run."
        ),
        epilog="req/s counts 2xx responses only; any non-2xx response or socket error is "
        "reported and makes the exit code 1.",
    )
    parser.add_argument("--seconds", type=int, default=15, metavar="S", help="load per server (15)")
    parser.add_argument(
        "--connections",
        type=int,
        default=50,
        metavar="N",
        help="concurrent keep-alive connections (50)",
    )
    parser.add_argument("--size", type=int, default=2, metavar="MiB", help="weight file (2)")
    parser.add_argument(
        "--warmup",
        type=int,
        default=2,
        metavar="S",
        help="untimed load before each measurement (2; 0 skips it)",
    )
    parser.add_argument(
        "--loadgen",
        choices=["auto", "wrk", "httpx"],
        default="auto",
        help="load generator: wrk if installed (auto, the default), or the asyncio/httpx one",
    )
    parser.add_argument("--threads", type=int, default=2, metavar="N", help="wrk threads (2)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if min(args.seconds, args.connections, args.size, args.threads) < 1 or args.warmup < 0:
        parser.error("--seconds, --connections, --size and --threads must be at least 1")
    if args.loadgen == "auto":
        args.loadgen = "wrk" if shutil.which("wrk") else "httpx"
    elif args.loadgen == "wrk" and not shutil.which("wrk"):
        parser.error("wrk is not installed (apt-get install wrk), try --loadgen httpx")
    return args


def run(args: argparse.Namespace, workdir: Path) -> dict[str, dict[str, Any]]:
    servers: list[tuple[str, str, Callable[[Path], AbstractContextManager[Server]]]] = [
        (BASELINE, "file", serve_naive),
        ("modelshelf file", "file", serve_modelshelf),
        ("modelshelf indexeddb", "indexeddb", serve_modelshelf),
    ]
    results: dict[str, dict[str, Any]] = {}
    for index, (label, store, serve) in enumerate(servers):
        with serve(workdir / f"server-{index}") as server:
            results[label] = measure(server, label, store, workdir, args)
    return results


def serve_modelshelf(folder: Path) -> AbstractContextManager[Server]:
    """``python -m modelshelf.cli serve --port PORT`` in a temp cwd, on the default stores.

    PYTHONPATH puts this checkout first, ahead of whichever one the venv has installed.
    """
    env = {"MODELSHELF_DATA_DIR": str(folder / "data"), "PYTHONPATH": str(REPOSITORY)}
    command = ["-m", "modelshelf.cli", "serve"]
    return serving("modelshelf", command, folder, env, cwd=folder)


def serve_naive(folder: Path) -> AbstractContextManager[Server]:
    app_dir = str(Path(__file__).resolve().parent)
    command = ["-m", "uvicorn", "naive_app:app", "--app-dir", app_dir, "--http", "h11"]
    command += ["--host", "127.0.0.1"]
    env = {"NAIVE_DATA_DIR": str(folder / "data")}
    return serving("naive app", command, folder, env, cwd=folder)


def measure(
    server: Server, label: str, store: str, workdir: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """Save the model, check both GETs once, then load it under --connections for --seconds."""
    model_url = f"{server.url}/v1/models/{store}/{MODEL_NAME}"
    with httpx.Client(timeout=60) as client:
        post_model(client, model_url, args.size * MIB, f"{label} save")
        json_url = f"{model_url}/model.json"
        urls = [json_url, weight_url(client, json_url)]
        for url in urls:
            response = client.get(url)
            if response.status_code != 200:
                raise RuntimeError(f"{label}: HTTP {response.status_code} for {url}")
        if len(response.content) != args.size * MIB:
            raise RuntimeError(f"{label}: {len(response.content)} weight bytes from {urls[1]}")
    idle_rss = peak_rss_bytes(server.process.pid)
    generate = wrk_load if args.loadgen == "wrk" else httpx_load
    if args.warmup:
        note(f"{label}: {args.warmup:g} s warm-up")
        generate(urls, args.connections, args.warmup, args, workdir)
    note(f"{label}: {args.seconds:g} s at {args.connections} connections ({args.loadgen})")
    result = generate(urls, args.connections, args.seconds, args, workdir)
    result |= {"urls": urls, "idle_rss": idle_rss, "peak_rss": peak_rss_bytes(server.process.pid)}
    note(
        f"  {result['ok'] / result['seconds']:.0f} req/s, p50 {result['p50_ms']:.1f} ms, "
        f"p99 {result['p99_ms']:.1f} ms, non-2xx {result['non_2xx']}, "
        f"socket errors {result['socket_errors']}"
    )
    return result


# -- load generators: both return the same figures ------------------------------------------


def wrk_load(
    urls: list[str], connections: int, seconds: float, args: argparse.Namespace, workdir: Path
) -> dict[str, Any]:
    """wrk with a Lua script alternating the two URLs and counting every response's status."""
    origin = urls[0].split("/v1/", 1)[0]
    paths = ", ".join(json.dumps(url.removeprefix(origin)) for url in urls)
    script = workdir / "small_model_load.lua"
    script.write_text(WRK_SCRIPT % {"paths": paths, "marker": WRK_MARKER})
    threads = min(args.threads, connections)
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s"]
    command += ["-s", str(script), origin]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith(WRK_MARKER)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    figures = json.loads(lines[-1].removeprefix(WRK_MARKER))
    statuses: Counter[int] = Counter()
    for counts in figures["statuses"]:
        statuses.update({int(status): count for status, count in counts.items()})
    return figures_of(
        seconds=figures["duration_us"] / 1e6,
        statuses=statuses,
        socket_errors=sum(figures["socket_errors"].values()),
        p50_ms=figures["p50_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        extra={"responses": figures["responses"], "bytes": figures["bytes"], "wrk": figures},
    )


def httpx_load(
    urls: list[str], connections: int, seconds: float, args: argparse.Namespace, workdir: Path
) -> dict[str, Any]:
    """The fallback: --connections asyncio workers on one httpx pool of as many connections."""
    return asyncio.run(_httpx_load(urls, connections, seconds))


async def _httpx_load(urls: list[str], connections: int, seconds: float) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    errors = 0

    async def worker(client: httpx.AsyncClient, first: int, deadline: float) -> None:
        nonlocal errors
        sent = first
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                response = await client.get(urls[sent % 2])
            except httpx.HTTPError:
                errors += 1
                continue
            finally:
                sent += 1
            latencies.append(time.perf_counter() - started)
            statuses[response.status_code] += 1

    async with httpx.AsyncClient(limits=limits, timeout=10) as client:
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(worker(client, index, deadline) for index in range(connections)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return figures_of(
        seconds=elapsed,
        statuses=statuses,
        socket_errors=errors,
        p50_ms=percentile(latencies, 0.50) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        extra={"responses": len(latencies)},
    )


def figures_of(
    *,
    seconds: float,
    statuses: Counter[int],
    socket_errors: int,
    p50_ms: float,
    p99_ms: float,
    extra: dict[str, Any],
) -> dict[str, Any]:
    ok = sum(count for status, count in statuses.items() if 200 <= status < 300)
    return {
        "seconds": seconds,
        "ok": ok,
        "non_2xx": sum(statuses.values()) - ok,
        "statuses": {str(status): count for status, count in sorted(statuses.items())},
        "socket_errors": socket_errors,
        "p50_ms": p50_ms,
        "p99_ms": p99_ms,
        **extra,
    }


def percentile(ordered: list[float], fraction: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# -- report ---------------------------------------------------------------------------------


def report(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> Report:
    base = results[BASELINE]
    base_rate = base["ok"] / base["seconds"]
    table = Report(
        f"small model under concurrency: {args.size} MiB model, {args.connections} connections, "
        f"{args.seconds:g} s per server, {args.loadgen} ({time.strftime('%Y-%m-%d %H:%M')}, "
        f"load avg {_load_average()})",
        [
            "server",
            "req/s",
            "x naive",
            "p50 ms",
            "x naive",
            "p99 ms",
            "x naive",
            "non-2xx",
            "socket errors",
            "idle RSS MB",
            "peak RSS MB",
        ],
    )
    for label, row in results.items():
        rate = row["ok"] / row["seconds"]
        table.add(
            label,
            rate,
            rate / base_rate,
            row["p50_ms"],
            row["p50_ms"] / base["p50_ms"],
            row["p99_ms"],
            row["p99_ms"] / base["p99_ms"],
            row["non_2xx"],
            row["socket_errors"],
            row["idle_rss"] / MB,
            row["peak_rss"] / MB,
        )
    table.notes.append(
        "req/s = 2xx responses per second, model.json and weight GETs alternating; latency "
        "x naive above 1 is slower.\nidle RSS = VmHWM after the save, before the load; peak "
        "RSS = VmHWM after the load."
    )
    return table


def _load_average() -> str:
    with open("/proc/loadavg") as loadavg:
        return loadavg.read().split()[0]


if __name__ == "__main__":
    sys.exit(main())
