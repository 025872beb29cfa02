"""Issue 12's goals in one run: modelshelf on every core against nginx and a naive FastAPI app.

Every server is started by this script, on 127.0.0.1, and measured in the same run:

  - modelshelf: ``python -m modelshelf.cli serve --workers N`` (2) in a temp working
    directory on the default stores (file, indexeddb, localstorage), as the README starts it,
    on its default HTTP stack;
  - nginx (Debian's package, ``/usr/sbin/nginx``), N worker processes, serving the same bytes
    as static files (sendfile on, access log off);
  - bench/naive_app.py, the store anyone would write in FastAPI, on ``uvicorn --http h11``;
  - bench/bare_asgi.py, a body sink on modelshelf's stack (httptools, uvloop), for saves;
  - SeaweedFS (``weed mini``) for the s3 store and for boto3's upload_file/download_file.

Measured:

  (a) a 2 MiB model (model.json as tf.io.http sends it, one weight file) loaded over 50
      keep-alive connections by wrk (model.json and the weight file alternately): req/s, p99,
      and the peak RSS (VmHWM) of each modelshelf worker;
  (b) 304 revalidations of model.json (If-None-Match: its ETag) at 50 connections, against
      nginx revalidating the static model.json the same way;
  (c) per store, a 256 MiB multipart save and a load of its weight file, both with curl:
      the save against the lower of the bare sink and ``dd conv=fsync`` of the same file, the
      load against nginx sending the same file; then a fresh server's worker RSS over a
      1 GiB save;
  (d) the s3 store: 256 MiB save and load times against boto3 upload_file/download_file of
      the same file to the same SeaweedFS.

The table lists each goal of issue 12 with the figure, its baseline, the ratio and whether it
is met. Transfers are best of --repeat, interleaved with their baselines. The load generator
shares the machine's cores with the servers: absolute figures are this machine's, ratios
the point.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from benchkit import (
    MB,
    MIB,
    REPOSITORY,
    Report,
    free_port,
    note,
    peak_rss_bytes,
    run_metadata,
    weight_chunks,
    write_json,
)

sys.path.insert(0, str(REPOSITORY))  # run as a script: the other scripts and tests live there

from service_throughput import Server, post_model, serving
from small_model_load import serve_naive

from tests.modelfactory import http_saved
from tests.support.seaweed import SeaweedS3
from tests.support.seaweed import terminate as stop

NGINX = "/usr/sbin/nginx"
STORES = ("file", "indexeddb", "localstorage")
SMALL_NAME = "bench/small"
LARGE_NAME = "bench/large"
BUCKET = "serving-goals"
WRK_SCRIPT = """
local paths = {%(paths)s}
local sent = 0
function request()
  sent = sent + 1
  return wrk.format("GET", paths[(sent - 1) %% #paths + 1])
end
"""
NGINX_CONF = """
%(user)s
worker_processes %(workers)d;
pid %(root)s/nginx.pid;
error_log %(root)s/nginx-error.log warn;
events { worker_connections 1024; }
http {
    types { application/json json; application/octet-stream bin; }
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    access_log off;
    client_body_temp_path %(root)s/body;
    proxy_temp_path %(root)s/proxy;
    fastcgi_temp_path %(root)s/fastcgi;
    uwsgi_temp_path %(root)s/uwsgi;
    scgi_temp_path %(root)s/scgi;
    server {
        listen 127.0.0.1:%(port)d;
        root %(root)s/www;
    }
}
"""


@dataclass
class Goal:
    """One row of the table: a figure against its baseline, and the ratio it must reach."""

    goal: str
    figure: float
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    at_least: float | None = None  # ratio figure/baseline must be >= this
    at_most: float | None = None  # figure (or ratio, with a baseline) must be <= this
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0:
            return None
        return self.figure / self.baseline

    @property
    def met(self) -> bool:
        value = self.ratio if self.ratio is not None else self.figure
        if self.at_least is not None and value < self.at_least:
            return False
        return not (self.at_most is not None and value > self.at_most)

    def target(self) -> str:
        subject = "x" if self.baseline is not None else f" {self.unit}"
        if self.at_least is not None:
            return f">= {self.at_least:g}{subject}"
        if self.at_most is not None:
            return f"<= {self.at_most:g}{subject}"
        return "(reference)"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="serving-goals-") as temp:
        workdir = Path(temp)
        goals, figures = run(args, workdir)
    table = report(goals, args)
    print(table.render())
    write_json(
        args.json,
        {
            "run": run_metadata(**vars(args)),
            "goals": [vars(goal) | {"ratio": goal.ratio, "met": goal.met} for goal in goals],
            "figures": figures,
        },
    )
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Needs wrk, curl and nginx (apt-get install wrk curl nginx-light) and the "
        "test extras (make install-test). Full run: about 4 minutes.",
    )
    parser.add_argument("--workers", type=int, default=2, help="modelshelf and nginx workers")
    parser.add_argument("--connections", type=int, default=50, help="wrk connections (50)")
    parser.add_argument("--seconds", type=int, default=10, help="each wrk run (10 s)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed wrk run first (2 s)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--small", type=int, default=2, help="small model, MiB (2)")
    parser.add_argument("--size", type=int, default=256, help="save and load, MiB (256)")
    parser.add_argument("--rss-size", type=int, default=1024, help="save for RSS, MiB (1024)")
    parser.add_argument("--repeat", type=int, default=3, help="transfers: best of (3)")
    parser.add_argument(
        "--stores", default=",".join(STORES), help=f"for (c), comma-separated ({','.join(STORES)})"
    )
    parser.add_argument("--skip-s3", action="store_true", help="leave out (d) and SeaweedFS")
    parser.add_argument("--json", metavar="FILE", help="also write every figure as JSON")
    args = parser.parse_args(argv)
    args.stores = [store for store in args.stores.split(",") if store]
    for tool in ("wrk", "curl", NGINX):
        if not shutil.which(tool):
            parser.error(f"{tool} is not installed (apt-get install wrk curl nginx-light)")
    return args


def run(args: argparse.Namespace, workdir: Path) -> tuple[list[Goal], dict[str, Any]]:
    files = write_model_files(workdir / "www", args)
    figures: dict[str, Any] = {}
    goals: list[Goal] = []
    with ExitStack() as servers:
        nginx = servers.enter_context(serve_nginx(workdir, args.workers))
        naive = servers.enter_context(serve_naive(workdir / "naive"))
        shelf = servers.enter_context(serve_shelf(workdir / "shelf", args.workers))
        urls = {
            "naive app": save_small(naive, "file", files),
            "nginx": [
                f"{nginx.url}/v1/small/model.json",
                f"{nginx.url}/v1/small/model.weights.bin",
            ],
            "modelshelf file": save_small(shelf, "file", files),
            "modelshelf indexeddb": save_small(shelf, "indexeddb", files),
        }
        figures["small"] = small_model(urls, args, workdir)
        figures["small_rss"] = {str(pid): rss for pid, rss in worker_rss(shelf).items()}
        bare = servers.enter_context(serve_bare(workdir / "bare", args.workers))
        urls["bare ASGI"] = [f"{bare.url}/v1/"]
        figures["revalidation"] = revalidations(urls, args, workdir)
        goals += small_goals(figures, args)
        figures["transfers"] = transfers(shelf, bare, nginx, files, args, workdir)
    goals += transfer_goals(figures["transfers"], args)
    figures["rss"] = {
        store: large_save_rss(workdir / f"rss-{store}", store, args) for store in args.stores
    }
    goals += [
        Goal(f"{store}: worker RSS over a {args.rss_size} MiB save", rss / MB, "MB", at_most=150)
        for store, rss in figures["rss"].items()
    ]
    if not args.skip_s3:
        figures["s3"] = s3_transfers(workdir / "s3", files, args)
        goals += s3_goals(figures["s3"], args)
    return goals, figures


# -- files and servers ------------------------------------------------------------------------


@dataclass
class ModelFiles:
    small_json: Path
    small_weights: Path
    large_json: Path
    large_weights: Path


def write_model_files(www: Path, args: argparse.Namespace) -> ModelFiles:
    """The small model and the large weight file, as files: curl sends them, nginx serves them."""
    www = www / "v1"  # so that wrk's script of small_model_load.py finds the origin
    files = ModelFiles(
        www / "small" / "model.json",
        www / "small" / "model.weights.bin",
        www / "large" / "model.json",
        www / "large" / "model.weights.bin",
    )
    for size, json_path, weights_path in (
        (args.small * MIB, files.small_json, files.small_weights),
        (args.size * MIB, files.large_json, files.large_weights),
    ):
        json_path.parent.mkdir(parents=True, exist_ok=True)
        entry = {"name": "bench/kernel", "shape": [size // 4], "dtype": "float32"}
        json_path.write_bytes(http_saved([entry], b"").model_json)
        with weights_path.open("wb") as out:
            for chunk in weight_chunks(size):
                out.write(chunk)
    return files


@contextmanager
def serve_nginx(workdir: Path, workers: int) -> Iterator[Server]:
    port = free_port()
    conf = workdir / "nginx.conf"
    user = "user root;" if os.geteuid() == 0 else ""  # else its workers run as nobody
    conf.write_text(NGINX_CONF % {"user": user, "workers": workers, "root": workdir, "port": port})
    log_path = workdir / "nginx.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [NGINX, "-c", str(conf), "-p", str(workdir), "-g", "daemon off;"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Server("nginx", f"http://127.0.0.1:{port}", process, log_path)
    try:
        _wait_for(server, "/v1/small/model.json")
        yield server
    finally:
        stop(process)


def serve_shelf(
    folder: Path, workers: int, env: dict[str, str] | None = None
) -> Any:  # a context manager of Server
    """``python -m modelshelf.cli serve --workers N`` in a temp cwd, on the default stores."""
    env = {
        "MODELSHELF_DATA_DIR": str(folder / "data"),
        "MODELSHELF_QUOTAS": "{}",  # localstorage's browser-like 10 MiB would refuse 256 MiB
        "PYTHONPATH": str(REPOSITORY),
        **(env or {}),
    }
    command = ["-m", "modelshelf.cli", "serve", "--workers", str(workers)]
    return serving("modelshelf", command, folder, env, cwd=folder)


def serve_bare(folder: Path, workers: int) -> Any:
    """bare_asgi.py on modelshelf's default stack: httptools and uvloop, as many workers."""
    app_dir = str(Path(__file__).resolve().parent)
    command = ["-m", "uvicorn", "bare_asgi:app", "--app-dir", app_dir, "--host", "127.0.0.1"]
    command += ["--workers", str(workers)]
    command += ["--http", "httptools", "--loop", "uvloop", "--log-level", "warning"]
    return serving("bare ASGI", command, folder, {"BARE_WRITE_DIR": str(folder)})


def _wait_for(server: Server, path: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(server.url + path, timeout=2).raise_for_status()
            return
        except httpx.HTTPError:
            if server.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{server.name} did not start:\n{server.log_tail()}") from None
            time.sleep(0.1)


def worker_rss(server: Server) -> dict[int, int]:
    """VmHWM of each worker process the server's supervisor spawned (or of the server)."""
    workers = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        ppid = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("PPid"))
        if ppid == server.process.pid and b"spawn_main" in (entry / "cmdline").read_bytes():
            workers[int(entry.name)] = peak_rss_bytes(entry.name)
    return workers or {server.process.pid: peak_rss_bytes(server.process.pid)}


# -- (a) and (b): the small model under load --------------------------------------------------


def save_small(server: Server, store: str, files: ModelFiles) -> list[str]:
    """Save the small model with curl as tf.io.http would; its model.json and weight URLs."""
    url = f"{server.url}/v1/models/{store}/{SMALL_NAME}"
    curl_save(url, files.small_json, files.small_weights)
    json_url = f"{url}/model.json"
    served = httpx.get(json_url, timeout=30)
    served.raise_for_status()
    weight = httpx.URL(json_url).join(served.json()["weightsManifest"][0]["paths"][0])
    return [json_url, str(weight)]


def small_model(
    urls: dict[str, list[str]], args: argparse.Namespace, workdir: Path
) -> dict[str, Any]:
    """wrk over each server in turn, twice (the second round in reverse order); best kept."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in urls}
    order = list(urls)
    for round_number in range(2):
        for name in order if round_number == 0 else reversed(order):
            if args.warmup:
                wrk(urls[name], args.warmup, args, workdir)
            note(f"(a) {name}: {args.seconds:g} s at {args.connections} connections")
            result = wrk(urls[name], args.seconds, args, workdir)
            note(f"    {result['rate']:.0f} req/s, p99 {result['p99_ms']:.0f} ms")
            runs[name].append(result)
    return {name: max(results, key=lambda r: r["rate"]) for name, results in runs.items()}


def wrk(
    urls: list[str], seconds: int, args: argparse.Namespace, workdir: Path, *headers: str
) -> dict[str, Any]:
    """wrk alternating ``urls``; req/s and p99. Any non-2xx/3xx answer or socket error fails.

    No Lua ``response`` callback: one makes wrk copy every body into Lua, and then the
    client, not the server, sets the pace (small_model_load.py counts statuses that way).
    """
    origin = str(httpx.URL(urls[0]).copy_with(path="/", query=None))
    paths = ", ".join(json.dumps(httpx.URL(url).raw_path.decode()) for url in urls)
    script = workdir / "alternate.lua"
    script.write_text(WRK_SCRIPT % {"paths": paths})
    command = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds}s", "--latency"]
    command += ["--timeout", "10s", "-s", str(script)]
    for header in headers:
        command += ["-H", header]
    output = subprocess.run([*command, origin], capture_output=True, text=True, check=True).stdout
    if "Non-2xx or 3xx" in output or "Socket errors" in output:
        raise RuntimeError(f"wrk on {urls}: errors\n{output}")
    p99 = next(line.split()[1] for line in output.splitlines() if line.strip().startswith("99%"))
    return {
        "rate": float(output.split("Requests/sec:")[1].split()[0]),
        "p99_ms": _milliseconds(p99),
        "wrk": output,
    }


def _milliseconds(text: str) -> float:
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0), ("m", 60_000.0)):
        if text.endswith(unit):
            return float(text.removesuffix(unit)) * factor
    raise ValueError(f"not a wrk duration: {text!r}")


def revalidations(
    urls: dict[str, list[str]], args: argparse.Namespace, workdir: Path
) -> dict[str, Any]:
    """wrk sending If-None-Match with model.json's ETag: every answer must be a 304."""
    found = {}
    for name in ("nginx", "bare ASGI", "modelshelf file", "modelshelf indexeddb"):
        url = urls[name][0]
        etag = httpx.get(url, timeout=30).headers["etag"]
        check = httpx.get(url, headers={"If-None-Match": etag}, timeout=30)
        if check.status_code != 304:
            raise RuntimeError(f"{name}: If-None-Match {etag} answered {check.status_code}")
        header = f"If-None-Match: {etag}"
        best = max(wrk([url], args.seconds, args, workdir, header)["rate"] for _ in range(2))
        note(f"(b) {name}: {best:.0f} revalidations/s")
        found[name] = best
    return found


def small_goals(figures: dict[str, Any], args: argparse.Namespace) -> list[Goal]:
    small, again = figures["small"], figures["revalidation"]
    naive, nginx = small["naive app"]["rate"], small["nginx"]["rate"]
    goals = []
    for store in ("file", "indexeddb"):
        ours = small[f"modelshelf {store}"]
        goals += [
            Goal(
                f"{store}: small model req/s vs naive",
                ours["rate"],
                "req/s",
                naive,
                "naive app",
                at_least=3,
            ),
            Goal(
                f"{store}: small model req/s vs nginx",
                ours["rate"],
                "req/s",
                nginx,
                "nginx",
                at_least=0.5,
            ),
            Goal(f"{store}: small model p99", ours["p99_ms"], "ms", at_most=100),
        ]
    peak = max(figures["small_rss"].values())
    goals.append(Goal(f"small model: worker RSS (of {args.workers})", peak / MB, "MB", at_most=150))
    for store in ("file", "indexeddb"):
        goals.append(
            Goal(
                f"{store}: model.json 304s/s vs nginx",
                again[f"modelshelf {store}"],
                "req/s",
                again["nginx"],
                "nginx",
                at_least=0.3,
            )
        )
    goals.append(
        Goal(
            "bare ASGI stack: 304s/s vs nginx", again["bare ASGI"], "req/s", again["nginx"], "nginx"
        )
    )
    return goals


# -- (c) large transfers ----------------------------------------------------------------------


def curl_save(url: str, model_json: Path, weights: Path) -> float:
    """A multipart POST like tf.io.http's, streamed from the files; the seconds it took."""
    command = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{time_total}"]
    command += ["-F", f"model.json=@{model_json};type=application/json"]
    command += ["-F", f"model.weights.bin=@{weights};type=application/octet-stream", url]
    status, seconds = subprocess.run(
        command, capture_output=True, text=True, check=True
    ).stdout.split()
    if status not in ("200", "201"):
        raise RuntimeError(f"POST {url}: HTTP {status}")
    return float(seconds)


def curl_load(url: str, size: int) -> float:
    command = [
        "curl",
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{size_download} %{time_total}",
        url,
    ]
    status, received, seconds = subprocess.run(
        command, capture_output=True, text=True, check=True
    ).stdout.split()
    if status != "200" or int(received) != size:
        raise RuntimeError(f"GET {url}: HTTP {status}, {received} of {size} bytes")
    return float(seconds)


def dd_fsync(source: Path, target: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        ["dd", f"if={source}", f"of={target}", "bs=1M", "conv=fsync", "status=none"], check=True
    )
    seconds = time.perf_counter() - started
    target.unlink()
    return seconds


def transfers(
    shelf: Server,
    bare: Server,
    nginx: Server,
    files: ModelFiles,
    args: argparse.Namespace,
    workdir: Path,
) -> dict[str, Any]:
    """Best-of-N seconds: each store's save and load, the bare sink, dd, nginx; interleaved."""
    size = files.large_weights.stat().st_size
    seconds: dict[str, list[float]] = {}

    def timed(name: str, measure: Callable[..., float], *arguments: Any) -> None:
        seconds.setdefault(name, []).append(measure(*arguments))
        note(f"(c) {name}: {size / MB / seconds[name][-1]:.0f} MB/s")

    large = (files.large_json, files.large_weights)
    for attempt in range(args.repeat):
        timed("bare sink save", curl_save, bare.url + "/", *large)
        timed("dd fsync", dd_fsync, files.large_weights, workdir / "dd.out")
        timed("nginx load", curl_load, f"{nginx.url}/v1/large/model.weights.bin", size)
        for store in args.stores:
            url = f"{shelf.url}/v1/models/{store}/{LARGE_NAME}"
            if attempt:
                httpx.delete(url, timeout=120).raise_for_status()  # one copy stored at a time
            timed(f"{store} save", curl_save, url, *large)
            timed(f"{store} load", curl_load, weight_url_of(url), size)
    return {
        "size": size,
        "seconds": seconds,
        "best": {name: min(runs) for name, runs in seconds.items()},
    }


def weight_url_of(model_url: str) -> str:
    json_url = f"{model_url}/model.json"
    served = httpx.get(json_url, timeout=30)
    served.raise_for_status()
    return str(httpx.URL(json_url).join(served.json()["weightsManifest"][0]["paths"][0]))


def transfer_goals(found: dict[str, Any], args: argparse.Namespace) -> list[Goal]:
    best, size = found["best"], found["size"]
    rate = {name: size / MB / seconds for name, seconds in best.items()}
    sink_name = "bare sink" if rate["bare sink save"] <= rate["dd fsync"] else "dd fsync"
    sink = min(rate["bare sink save"], rate["dd fsync"])
    goals = []
    for store in args.stores:
        goals.append(
            Goal(
                f"{store}: {args.size} MiB save MB/s",
                rate[f"{store} save"],
                "MB/s",
                sink,
                sink_name,
                at_least=0.9,
            )
        )
        goals.append(
            Goal(
                f"{store}: {args.size} MiB load MB/s",
                rate[f"{store} load"],
                "MB/s",
                rate["nginx load"],
                "nginx",
                at_least=1.0,
            )
        )
    return goals


def large_save_rss(folder: Path, store: str, args: argparse.Namespace) -> int:
    """A fresh server's highest worker VmHWM after one --rss-size MiB save, streamed."""
    with serve_shelf(folder, args.workers) as server, httpx.Client(timeout=600) as client:
        url = f"{server.url}/v1/models/{store}/{LARGE_NAME}"
        post_model(client, url, args.rss_size * MIB, f"(c) {store} {args.rss_size} MiB save")
        peak = max(worker_rss(server).values())
    note(f"(c) {store}: worker peak RSS {peak / MB:.0f} MB")
    return peak


# -- (d) s3 -----------------------------------------------------------------------------------


def s3_transfers(folder: Path, files: ModelFiles, args: argparse.Namespace) -> dict[str, Any]:
    size = files.large_weights.stat().st_size
    seconds: dict[str, list[float]] = {}
    note("(d) starting SeaweedFS")
    with SeaweedS3.start(folder / "seaweed") as seaweed:
        seaweed.create_bucket(BUCKET)
        stores = {"s3": seaweed.backend_url(BUCKET, "modelshelf", credentials=False)}
        env = {**seaweed.env(), "MODELSHELF_STORES": json.dumps(stores)}
        client = seaweed.client()
        with serve_shelf(folder / "shelf", args.workers, env) as shelf:
            url = f"{shelf.url}/v1/models/s3/{LARGE_NAME}"
            for attempt in range(args.repeat):
                started = time.perf_counter()
                client.upload_file(str(files.large_weights), BUCKET, "boto3/weights.bin")
                seconds.setdefault("boto3 upload_file", []).append(time.perf_counter() - started)
                started = time.perf_counter()
                client.download_file(BUCKET, "boto3/weights.bin", str(folder / "downloaded.bin"))
                seconds.setdefault("boto3 download_file", []).append(time.perf_counter() - started)
                (folder / "downloaded.bin").unlink()
                if attempt:
                    httpx.delete(url, timeout=120).raise_for_status()
                seconds.setdefault("s3 save", []).append(
                    curl_save(url, files.large_json, files.large_weights)
                )
                seconds.setdefault("s3 load", []).append(curl_load(weight_url_of(url), size))
                note(
                    "(d) " + ", ".join(f"{name} {runs[-1]:.2f} s" for name, runs in seconds.items())
                )
        client.close()
    return {
        "size": size,
        "seconds": seconds,
        "best": {name: min(runs) for name, runs in seconds.items()},
    }


def s3_goals(found: dict[str, Any], args: argparse.Namespace) -> list[Goal]:
    best = found["best"]
    return [
        Goal(
            f"s3: {args.size} MiB save time vs boto3",
            best["s3 save"],
            "s",
            best["boto3 upload_file"],
            "upload_file",
            at_most=1.3,
        ),
        Goal(
            f"s3: {args.size} MiB load time vs boto3",
            best["s3 load"],
            "s",
            best["boto3 download_file"],
            "download_file",
            at_most=1.3,
        ),
    ]


# -- report -----------------------------------------------------------------------------------


def report(goals: list[Goal], args: argparse.Namespace) -> Report:
    load = " ".join(f"{value:.1f}" for value in os.getloadavg())
    table = Report(
        f"issue 12 goals: modelshelf --workers {args.workers} against baselines of the same run "
        f"({time.strftime('%Y-%m-%d %H:%M')}, load avg {load}, {os.cpu_count()} CPUs)",
        ["goal", "figure", "unit", "baseline", "baseline is", "ratio", "target", "met"],
    )
    for goal in goals:
        table.add(
            goal.goal,
            goal.figure,
            goal.unit,
            goal.baseline,
            goal.baseline_name or "-",
            goal.ratio,
            goal.target(),
            "-" if goal.target() == "(reference)" else "yes" if goal.met else "NO",
        )
    table.notes.append(
        f"small model: {args.small} MiB, {args.connections} connections, {args.seconds:g} s per "
        f"run, best of 2; transfers best of {args.repeat}, curl; ratios are figure/baseline "
        f"(for the s3 rows, time/time)."
    )
    return table


if __name__ == "__main__":
    sys.exit(main())
