"""Issue #3: save and load throughput of the real service, and its peak RSS during a large save.

Every server runs in a subprocess of its own on 127.0.0.1, the client (httpx) in this process:

(a) save: a streaming multipart POST (model.json, then --size MiB of weights from a
    generator, never held) to the service, against bare_asgi.py on the same uvicorn
    settings, which reads the body and drops it. Goal: service/bare >= 0.7. A second
    baseline, bare_asgi.py's /write, adds the least a durable save must do (sha256, a file
    write, fsync), to show what the service costs beyond that.
(b) load: GET of the saved weight file from the service, streamed to /dev/null, against
    ``python -m http.server`` serving the same bytes from a plain file. Goal >= 0.8.
(c) peak RSS (VmHWM) of a fresh service process over a --rss-size MiB save. Goal < 150 MB.

Throughputs are the best of --repeat runs, interleaved with their baseline's runs. Each run
also counts the server's minor page faults: with glibc's default malloc settings a server can
spend most of its time faulting in fresh pages for every body chunk, and how much depends on
the process's history; ``--malloc steady`` starts every server with malloc settings that keep
freed memory, which shows what the code itself costs.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
from benchkit import (
    MB,
    MIB,
    REPOSITORY,
    Progress,
    Report,
    free_port,
    megabytes_per_second,
    peak_rss_bytes,
    run_metadata,
    weight_chunks,
    write_json,
)

sys.path.insert(0, str(REPOSITORY))  # run as a script: the project's packages live there

from tests.modelfactory import http_saved
from tests.support.seaweed import terminate as stop

STORES = ("file", "indexeddb")
MODEL_NAME = "bench/throughput"
SAVE_GOAL = 0.7
LOAD_GOAL = 0.8
RSS_GOAL_MB = 150
UVICORN_OPTIONS = ["--host", "127.0.0.1", "--log-level", "warning", "--no-access-log"]
STATIC_FILE = "model.weights.bin"
BARE_PATHS = {"bare": "/", "bare+write": "/write"}  # bare_asgi.py's two baselines
Run = dict[str, float]  # one request: seconds, and the server's minor_faults during it
READY_TIMEOUT_SECONDS = 30.0
# glibc reads these at start-up; any of them also turns off its dynamic mmap threshold.
MALLOC_ENVIRONMENTS: dict[str, dict[str, str]] = {
    "default": {},
    "steady": {
        "MALLOC_MMAP_THRESHOLD_": str(4 * MIB),  # body chunks come from the heap, not mmap
        "MALLOC_TRIM_THRESHOLD_": str(64 * MIB),  # and freed chunks stay there for the next
    },
}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="modelshelf-bench-") as temp:
        results = run(args, Path(temp))
    reports = [save_report(results, args), load_report(results, args)]
    if args.rss_size:
        reports.append(rss_report(results, args))
    print("\n\n".join(report.render() for report in reports))
    metadata = run_metadata(
        size_mib=args.size,
        rss_size_mib=args.rss_size,
        repeat=args.repeat,
        malloc=args.malloc,
        uvicorn_http="httptools" if find_spec("httptools") else "h11",
        uvicorn_loop="uvloop" if find_spec("uvloop") else "asyncio",
    )
    write_json(args.json, {"run": metadata, "results": results})
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Save and load throughput of the modelshelf service against a bare ASGI app and "
            "python -m http.server, and the service's peak RSS during a large save (issue #3)."
        )
    )
    parser.add_argument(
        "--size", type=int, default=256, metavar="MiB", help="model size for (a), (b) (256)"
    )
    parser.add_argument(
        "--rss-size",
        type=int,
        default=1024,
        metavar="MiB",
        help="model size for the peak-RSS save (c) (default 1024; 0 skips it)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure, best kept (3)")
    parser.add_argument(
        "--stores", default=",".join(STORES), help=f"subset of {','.join(STORES)} (default: both)"
    )
    parser.add_argument(
        "--malloc",
        choices=sorted(MALLOC_ENVIRONMENTS),
        default="default",
        help="glibc malloc settings of every server: as deployed (default), or 'steady' "
        "(MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_ set, so no page-fault churn)",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument(
        "--timeout", type=float, default=600, metavar="S", help="per request (default 600)"
    )
    args = parser.parse_args(argv)
    args.stores = [name.strip() for name in args.stores.split(",") if name.strip()]
    if unknown := sorted(set(args.stores) - set(STORES)):
        parser.error(f"unknown stores {unknown}; choose from {', '.join(STORES)}")
    if args.size < 1 or args.rss_size < 0 or args.repeat < 1:
        parser.error("--size and --repeat must be at least 1, --rss-size at least 0")
    return args


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    client = httpx.Client(timeout=httpx.Timeout(args.timeout, connect=10))
    env = MALLOC_ENVIRONMENTS[args.malloc]
    with client, ExitStack() as stack:
        service = stack.enter_context(serve_modelshelf(workdir / "service", env))
        bare = stack.enter_context(serve_bare(workdir / "bare", env))
        saves = measure_saves(client, service, bare, args)
        static_root = write_static_file(workdir / "static-root", args.size * MIB)
        static = stack.enter_context(serve_static(static_root, workdir / "static", env))
        loads = measure_loads(client, service, static, saves["load_urls"], args)
    results: dict[str, Any] = {"save": saves, "load": loads}
    if args.rss_size:
        results["rss"] = measure_rss(workdir, args)
    return results


# -- servers ----------------------------------------------------------------------------------


@dataclass
class Server:
    """A server in a subprocess of its own."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def minor_faults(self) -> int:
        """Minor page faults so far (field 10 of /proc/PID/stat)."""
        stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[7])


def serve_modelshelf(folder: Path, env: dict[str, str]) -> AbstractContextManager[Server]:
    stores = {
        "file": f"file://{folder / 'models'}",
        "indexeddb": f"sqlite://{folder / 'indexeddb.sqlite'}",
    }
    env = {**env, "MODELSHELF_STORES": json.dumps(stores), "MODELSHELF_DATA_DIR": str(folder)}
    command = ["-m", "uvicorn", "modelshelf.service.app:create_app", "--factory", *UVICORN_OPTIONS]
    return serving("service", command, folder, env)


def serve_bare(folder: Path, env: dict[str, str]) -> AbstractContextManager[Server]:
    app_dir = str(Path(__file__).resolve().parent)
    command = ["-m", "uvicorn", "bare_asgi:app", "--app-dir", app_dir, *UVICORN_OPTIONS]
    return serving("bare ASGI", command, folder, {**env, "BARE_WRITE_DIR": str(folder)})


def serve_static(root: Path, folder: Path, env: dict[str, str]) -> AbstractContextManager[Server]:
    command = ["-m", "http.server", "--bind", "127.0.0.1", "--directory", str(root)]
    return serving("http.server", command, folder, env, port_argument=False)


@contextmanager
def serving(
    name: str,
    arguments: list[str],
    folder: Path,
    env: dict[str, str],
    *,
    port_argument: bool = True,
    cwd: Path = REPOSITORY,
) -> Iterator[Server]:
    """Run ``python ARGUMENTS`` in ``cwd`` on a free port until the block ends, once it answers."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = [sys.executable, *arguments, *(["--port", str(port)] if port_argument else [])]
    if not port_argument:
        command.append(str(port))
    log_path = folder / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Server(name, f"http://127.0.0.1:{port}", process, log_path)
    try:
        wait_until_answering(server)
        yield server
    finally:
        stop(process)


def wait_until_answering(server: Server) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while True:
        try:
            httpx.get(server.url + "/", timeout=2)
            return
        except httpx.TransportError:
            if server.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"{server.name} did not start; its log:\n{server.log_tail()}"
                ) from None
            time.sleep(0.1)


def measure_saves(
    client: httpx.Client, service: Server, bare: Server, args: argparse.Namespace
) -> dict[str, Any]:
    """Best-of-N saves, each repetition running bare, then every store, in turn."""
    size = args.size * MIB
    runs: dict[str, list[Run]] = {name: [] for name in (*BARE_PATHS, *args.stores)}
    load_urls: dict[str, str] = {}
    for attempt in range(1, args.repeat + 1):
        tag = f"{attempt}/{args.repeat}"
        for name, path in BARE_PATHS.items():
            with counting(bare, runs[name]) as run:
                run["seconds"] = post_model(client, bare.url + path, size, f"{name} {tag}")[0]
        for store in args.stores:
            url = f"{service.url}/v1/models/{store}/{MODEL_NAME}"
            with counting(service, runs[store]) as run:
                run["seconds"], answer = post_model(client, url, size, f"{store} save {tag}")
            load_urls[store] = answer["loadUrl"]
    return {"size_bytes": size, "runs": runs, "load_urls": load_urls}


@contextmanager
def counting(server: Server, runs: list[Run]) -> Iterator[Run]:
    """Record one run: the block sets its seconds, the server's minor faults are counted."""
    run: Run = {"seconds": 0.0, "minor_faults": 0}
    before = server.minor_faults()
    yield run
    run["minor_faults"] = server.minor_faults() - before
    runs.append(run)


def post_model(
    client: httpx.Client, url: str, size: int, label: str
) -> tuple[float, dict[str, Any]]:
    """POST a model as tf.io.http does, streaming its weights; the seconds and the answer."""
    boundary = f"----modelshelf-bench-{secrets.token_hex(8)}"
    progress = Progress(label, size)
    length, body = multipart_body(boundary, size, progress)
    headers = {
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Content-Length": str(length),
    }
    started = time.perf_counter()
    response = client.post(url, content=body, headers=headers)
    seconds = time.perf_counter() - started
    if response.status_code != 201:
        raise RuntimeError(f"{label}: HTTP {response.status_code}: {response.text[:500]}")
    progress.finish(f"{megabytes_per_second(size, seconds):.0f} MB/s")
    answer: dict[str, Any] = response.json()
    return seconds, answer


def multipart_body(boundary: str, size: int, progress: Progress) -> tuple[int, Iterator[bytes]]:
    """The body's length and its chunks: model.json, then the weights as they are generated."""
    entry = {"name": "bench/kernel", "shape": [size // 4], "dtype": "float32"}
    model_json = http_saved([entry], b"").model_json
    head = (
        _part_head(boundary, "model.json", "application/json")
        + model_json
        + b"\r\n"
        + _part_head(boundary, "model.weights.bin", "application/octet-stream")
    )
    tail = f"\r\n--{boundary}--\r\n".encode()

    def chunks() -> Iterator[bytes]:
        yield head
        for chunk in weight_chunks(size):
            progress.advance(len(chunk))
            yield chunk
        yield tail

    return len(head) + size + len(tail), chunks()


def _part_head(boundary: str, name: str, content_type: str) -> bytes:
    return (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{name}"; filename="{name}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()


# -- (b) loads --------------------------------------------------------------------------------


def measure_loads(
    client: httpx.Client,
    service: Server,
    static: Server,
    load_urls: dict[str, str],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Best-of-N downloads of the current weight file, each repetition static first."""
    size = args.size * MIB
    weight_urls = {store: weight_url(client, url) for store, url in load_urls.items()}
    static_url = f"{static.url}/{STATIC_FILE}"
    runs: dict[str, list[Run]] = {"http.server": [], **{store: [] for store in weight_urls}}
    for attempt in range(1, args.repeat + 1):
        tag = f"{attempt}/{args.repeat}"
        with counting(static, runs["http.server"]) as run:
            run["seconds"] = download(client, static_url, size, f"http.server load {tag}")
        for store, url in weight_urls.items():
            with counting(service, runs[store]) as run:
                run["seconds"] = download(client, url, size, f"{store} load {tag}")
    return {"size_bytes": size, "runs": runs, "urls": {**weight_urls, "http.server": static_url}}


def write_static_file(folder: Path, size: int) -> Path:
    """The weights the service stored, as one plain file for http.server to serve."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / STATIC_FILE).open("wb") as file:
        for chunk in weight_chunks(size):
            file.write(chunk)
    return folder


def weight_url(client: httpx.Client, load_url: str) -> str:
    """The weight file's URL, as TF.js resolves it from the served model.json."""
    response = client.get(load_url)
    response.raise_for_status()
    path: str = response.json()["weightsManifest"][0]["paths"][0]
    return urljoin(load_url, path)


def download(client: httpx.Client, url: str, size: int, label: str) -> float:
    progress = Progress(label, size)
    started = time.perf_counter()
    with client.stream("GET", url) as response, open(os.devnull, "wb") as sink:
        if response.status_code != 200:
            raise RuntimeError(f"{label}: HTTP {response.status_code} for {url}")
        for chunk in response.iter_raw():
            sink.write(chunk)
            progress.advance(len(chunk))
    seconds = time.perf_counter() - started
    if progress.done != size:
        raise RuntimeError(f"{label}: got {progress.done} bytes of {size}")
    progress.finish(f"{megabytes_per_second(size, seconds):.0f} MB/s")
    return seconds


# -- (c) peak RSS -----------------------------------------------------------------------------


def measure_rss(workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Each store's save in a fresh service process, and the bare app's, with VmHWM around it."""
    size = args.rss_size * MIB
    env = MALLOC_ENVIRONMENTS[args.malloc]
    rows: dict[str, dict[str, float]] = {}
    client = httpx.Client(timeout=httpx.Timeout(args.timeout, connect=10))
    with client:
        with serve_bare(workdir / "rss-bare", env) as bare:
            rows["bare"] = rss_of_save(client, bare, f"{bare.url}/", size, "bare")
        for store in args.stores:
            folder = workdir / f"rss-{store}"
            with serve_modelshelf(folder, env) as service:
                url = f"{service.url}/v1/models/{store}/{MODEL_NAME}"
                rows[store] = rss_of_save(client, service, url, size, store)
    return {"size_bytes": size, "servers": rows}


def rss_of_save(
    client: httpx.Client, server: Server, url: str, size: int, label: str
) -> dict[str, float]:
    start_rss = peak_rss_bytes(server.process.pid)
    seconds, _answer = post_model(client, url, size, f"{label} save {size // MIB} MiB (RSS)")
    return {
        "start_rss": start_rss,
        "peak_rss": peak_rss_bytes(server.process.pid),
        "seconds": seconds,
    }


# -- reports ----------------------------------------------------------------------------------


def save_report(results: dict[str, Any], args: argparse.Namespace) -> Report:
    saves = results["save"]
    bare, bare_faults = best_run(saves, "bare")
    written, _faults = best_run(saves, "bare+write")
    report = Report(
        f"(a) save, {args.size} MiB streaming multipart POST, best of {args.repeat}, "
        f"malloc {args.malloc} ({time.strftime('%Y-%m-%d %H:%M')})",
        [
            "store",
            "service MB/s",
            "bare MB/s",
            "service/bare",
            f">= {SAVE_GOAL}",
            "bare+write MB/s",
            "service/that",
            "faults/MiB svc",
            "bare",
        ],
    )
    for store in args.stores:
        service, faults = best_run(saves, store)
        ratio = service / bare
        verdict = _verdict(ratio >= SAVE_GOAL)
        report.add(
            store, service, bare, ratio, verdict, written, service / written, faults, bare_faults
        )
    report.notes.append(
        "bare = bare_asgi.py reading the body and dropping it; bare+write = the same plus "
        "sha256, file write and fsync.\nfaults/MiB = the server's minor page faults per MiB "
        "of body in the fastest run."
    )
    return report


def load_report(results: dict[str, Any], args: argparse.Namespace) -> Report:
    loads = results["load"]
    static, static_faults = best_run(loads, "http.server")
    report = Report(
        f"(b) load, GET of the {args.size} MiB weight file to /dev/null, best of {args.repeat}",
        [
            "store",
            "service MB/s",
            "http.server MB/s",
            "service/static",
            f">= {LOAD_GOAL}",
            "faults/MiB svc",
            "static",
        ],
    )
    for store in args.stores:
        service, faults = best_run(loads, store)
        ratio = service / static
        report.add(
            store, service, static, ratio, _verdict(ratio >= LOAD_GOAL), faults, static_faults
        )
    return report


def rss_report(results: dict[str, Any], args: argparse.Namespace) -> Report:
    report = Report(
        f"(c) server peak RSS (VmHWM) over one {args.rss_size} MiB save, fresh server each",
        ["server", "RSS at start MB", "peak RSS MB", "save MB/s", f"< {RSS_GOAL_MB} MB"],
    )
    size = results["rss"]["size_bytes"]
    for name, row in results["rss"]["servers"].items():
        peak = row["peak_rss"] / MB
        verdict = "(baseline)" if name == "bare" else _verdict(peak < RSS_GOAL_MB)
        mbps = megabytes_per_second(size, row["seconds"])
        report.add(name, row["start_rss"] / MB, peak, mbps, verdict)
    return report


def best_run(measured: dict[str, Any], name: str) -> tuple[float, int]:
    """MB/s of the fastest run, and the server's minor page faults per MiB in that run."""
    fastest = min(measured["runs"][name], key=lambda run: run["seconds"])
    size = measured["size_bytes"]
    return megabytes_per_second(size, fastest["seconds"]), round(
        fastest["minor_faults"] * MIB / size
    )


def _verdict(met: bool) -> str:
    return "yes" if met else "NO"


if __name__ == "__main__":
    sys.exit(main())
