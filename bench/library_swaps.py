"""Issue 9, item 8: each hand-written piece against the library that replaced it, in one run.

"before" is the tree at --before (default 173b0b9, the last commit with the hand-written
multipart reader, zip writer and progress bar), taken with ``git archive`` and installed with
``pip install --no-deps --target`` into the temp dir; "after" is this checkout. Servers are
subprocesses on 127.0.0.1 with service_throughput.py's uvicorn options.

(a) save: a --size MiB (256) streaming multipart POST, shaped like tf.io.http's, into the
    ``file`` store of a service of each tree; best of --repeat (5), the trees interleaved
    (ABBA: every other round the other tree goes first).
(b) export: GET ``~export`` of that model from each service, to /dev/null; Content-Length
    checked against the bytes received; best of --repeat, interleaved.
(c) peak RSS (VmHWM) of a fresh service of each tree after one --size MiB save, and after
    one export of it.
(d) the piece alone, in this process: each tree's multipart reader over the same body in
    64 KiB chunks (what uvicorn hands over), and each tree's zip writer over a --size MiB
    member arriving as 1 MiB chunks (the backends' read size) from an async generator.
(e) the CLI on a pseudo-terminal, each tree's (and this one's with rich made unimportable):
    ``modelshelf --help`` (start-up), ``push`` of a --cli-size MiB (64) folder drawing its
    progress bar, and ``ls`` (a table with rich); wall seconds, best of --repeat. Also the
    time to import rich's progress and table modules, which only a run that draws pays.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import pty
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
from benchkit import (
    MIB,
    REPOSITORY,
    Report,
    megabytes_per_second,
    note,
    peak_rss_bytes,
    run_metadata,
    weight_chunks,
    write_json,
)
from service_throughput import Server, post_model, serving

from tests.modelfactory import http_saved

BEFORE = "173b0b9"  # the last commit with service/multipart.py and zipstream.py hand-written
TREES = ("before", "after")
MODEL_NAME = "bench/swaps"
UVICORN = ["-m", "uvicorn", "modelshelf.service.app:create_app", "--factory"]
UVICORN_OPTIONS = ["--host", "127.0.0.1", "--log-level", "warning", "--no-access-log"]
NETWORK_CHUNK = 64 * 1024
BOUNDARY = b"----formdata-undici-0123456789"
WITHOUT_RICH = "import sys; sys.modules['rich'] = None; from modelshelf.cli import main; main()"
RICH_IMPORT = (
    "import time; started = time.perf_counter(); import rich.progress, rich.table; "
    "print(time.perf_counter() - started)"
)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="modelshelf-swaps-") as temp:
        workdir = Path(temp)
        before = install_tree(args.before, workdir)
        results = {
            "service": measure_service(before, workdir, args),
            "rss": measure_rss(before, workdir, args),
            "in_process": measure_in_process(before, args),
            "cli": measure_cli(before, workdir, args),
        }
    print("\n\n".join(report.render() for report in reports(results, args)))
    metadata = run_metadata(size_mib=args.size, cli_size_mib=args.cli_size, before=args.before)
    write_json(args.json, {"run": metadata, "results": results})
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256, metavar="MiB", help="model size (256)")
    parser.add_argument(
        "--cli-size", type=int, default=64, metavar="MiB", help="CLI push size (64)"
    )
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure, best kept (5)")
    parser.add_argument("--before", default=BEFORE, help=f"git ref of the 'before' ({BEFORE})")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if min(args.size, args.cli_size, args.repeat) < 1:
        parser.error("--size, --cli-size and --repeat must be at least 1")
    return args


def install_tree(ref: str, workdir: Path) -> Path:
    """The tree at ``ref``, installed as pip installs it (modelshelf.service from service/)."""
    source, target = workdir / "before-src", workdir / "before"
    source.mkdir()
    note(f"installing {ref} into {target}")
    archive = subprocess.run(
        ["git", "archive", "--format=tar", ref], cwd=REPOSITORY, capture_output=True, check=True
    ).stdout
    archive_path = workdir / "before.tar"
    archive_path.write_bytes(archive)
    with tarfile.open(archive_path) as tar:
        tar.extractall(source, filter="data")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", target, "."],
        cwd=source,
        check=True,
    )
    return target


def tree_env(tree: str, before: Path) -> tuple[Path, dict[str, str]]:
    """Where to run a tree's code and its environment: the before copy shadows the checkout."""
    if tree == "after":
        return REPOSITORY, {}
    return before, {"PYTHONPATH": str(before)}


def serve_tree(tree: str, before: Path, folder: Path) -> AbstractContextManager[Server]:
    cwd, env = tree_env(tree, before)
    env = {**env, "MODELSHELF_STORES": json.dumps({"file": f"file://{folder / 'models'}"})}
    env["MODELSHELF_DATA_DIR"] = str(folder)
    return serving(tree, [*UVICORN, *UVICORN_OPTIONS], folder, env, cwd=cwd)


# -- (a), (b): through the service ----------------------------------------------------------


def measure_service(before: Path, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    size = args.size * MIB
    runs: dict[str, dict[str, list[float]]] = {t: {"save": [], "export": []} for t in TREES}
    client = httpx.Client(timeout=httpx.Timeout(600, connect=10))
    with (
        client,
        serve_tree("before", before, workdir / "svc-before") as old,
        serve_tree("after", before, workdir / "svc-after") as new,
    ):
        servers = {"before": old, "after": new}
        for attempt in range(1, args.repeat + 1):
            for tree in in_turn(TREES, attempt):
                url = f"{servers[tree].url}/v1/models/file/{MODEL_NAME}"
                label = f"{tree} save {attempt}/{args.repeat}"
                runs[tree]["save"].append(post_model(client, url, size, label)[0])
            for tree in in_turn(TREES, attempt):
                label = f"{tree} export {attempt}/{args.repeat}"
                runs[tree]["export"].append(export(client, servers[tree], label))
    return {"size_bytes": size, "runs": runs}


def in_turn(names: tuple[str, ...], attempt: int) -> tuple[str, ...]:
    """Every other attempt in reverse order, so neither side always follows the other."""
    return names if attempt % 2 else names[::-1]


def export(client: httpx.Client, server: Server, label: str) -> float:
    """Seconds to stream the export to /dev/null; its Content-Length must be what came."""
    url = f"{server.url}/v1/models/file/{MODEL_NAME}/~export"
    started = time.perf_counter()
    with client.stream("GET", url) as response, open(os.devnull, "wb") as sink:
        if response.status_code != 200:
            raise RuntimeError(f"{label}: HTTP {response.status_code}")
        length = int(response.headers["content-length"])
        received = 0
        for chunk in response.iter_raw():
            sink.write(chunk)
            received += len(chunk)
    seconds = time.perf_counter() - started
    if received != length:
        raise RuntimeError(f"{label}: {received} bytes, Content-Length said {length}")
    note(f"  {label}: {megabytes_per_second(length, seconds):.0f} MB/s")
    return seconds


def measure_rss(before: Path, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    size = args.size * MIB
    rows: dict[str, dict[str, int]] = {}
    client = httpx.Client(timeout=httpx.Timeout(600, connect=10))
    with client:
        for tree in TREES:
            with serve_tree(tree, before, workdir / f"rss-{tree}") as server:
                pid = server.process.pid
                start = peak_rss_bytes(pid)
                url = f"{server.url}/v1/models/file/{MODEL_NAME}"
                post_model(client, url, size, f"{tree} save (RSS)")
                saved = peak_rss_bytes(pid)
                export(client, server, f"{tree} export (RSS)")
                rows[tree] = {"start": start, "save": saved, "export": peak_rss_bytes(pid)}
    return {"size_bytes": size, "servers": rows}


# -- (d): the piece alone ---------------------------------------------------------------------


def measure_in_process(before: Path, args: argparse.Namespace) -> dict[str, Any]:
    size = args.size * MIB
    old_service = before / "modelshelf" / "service"
    readers = {
        "before": load_module("before_multipart", old_service / "multipart.py"),
        "after": importlib.import_module("modelshelf.service.multipart"),
    }
    writers = {
        "before": load_module("before_zipstream", old_service / "zipstream.py"),
        "after": importlib.import_module("modelshelf.service.zipstream"),
    }
    body = multipart_chunks(size)
    member = list(weight_chunks(size))
    runs: dict[str, dict[str, list[float]]] = {t: {"parse": [], "zip": []} for t in TREES}
    for attempt in range(1, args.repeat + 1):
        for tree in in_turn(TREES, attempt):
            runs[tree]["parse"].append(asyncio.run(timed(parse, readers[tree], body, size)))
            runs[tree]["zip"].append(asyncio.run(timed(zip_member, tree, writers[tree], member)))
    return {"size_bytes": size, "runs": runs}


def load_module(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def multipart_chunks(size: int) -> list[bytes]:
    """A tf.io.http body cut into network-sized chunks, held so only the parser is timed."""
    entry = {"name": "bench/kernel", "shape": [size // 4], "dtype": "float32"}
    head = (
        _part_head("model.json", "application/json")
        + http_saved([entry], b"").model_json
        + b"\r\n"
        + _part_head("model.weights.bin", "application/octet-stream")
    )
    return [head, *weight_chunks(size, NETWORK_CHUNK), b"\r\n--" + BOUNDARY + b"--\r\n"]


def _part_head(name: str, content_type: str) -> bytes:
    disposition = f'form-data; name="{name}"; filename="{name}"'
    headers = f"Content-Disposition: {disposition}\r\nContent-Type: {content_type}\r\n\r\n"
    return b"--" + BOUNDARY + b"\r\n" + headers.encode()


async def timed(function: Callable[..., Any], *arguments: Any) -> float:
    started = time.perf_counter()
    await function(*arguments)
    return time.perf_counter() - started


async def parse(module: ModuleType, body: list[bytes], size: int) -> None:
    reader = module.MultipartReader(replay(body), BOUNDARY)
    await reader.next_part()
    await reader.read_part(1 << 20, "model.json")
    await reader.next_part()
    received = 0
    async for chunk in reader.part_body():
        received += len(chunk)
    if received != size or await reader.next_part() is not None:
        raise RuntimeError(f"the reader gave {received} bytes of {size}")


async def replay(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def zip_member(tree: str, module: ModuleType, member: list[bytes]) -> None:
    size = sum(map(len, member))
    entries = [
        module.ZipEntry("net.json", 2, replay([b"{}"]) if tree == "before" else b"{}"),
        module.ZipEntry("net.weights.bin", size, replay(member)),
    ]
    if tree == "before":
        length, chunks = module.archive_size(entries), module.stream_zip(entries)
    else:
        archive = module.ZipArchive(entries)
        length, chunks = len(archive), archive
    written = 0
    async for chunk in chunks:
        written += len(chunk)
    if written != length:
        raise RuntimeError(f"{tree} zip: {written} bytes, announced {length}")


# -- (e): the CLI on a terminal ---------------------------------------------------------------

CLI_VARIANTS = ("before", "after", "after, no rich")


def measure_cli(before: Path, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    folder = cli_model_folder(workdir / "cli-model", args.cli_size * MIB)
    runs: dict[str, dict[str, list[float]]] = {
        v: {"help": [], "push": [], "ls": []} for v in CLI_VARIANTS
    }
    drawn: dict[str, int] = {}
    with serve_tree("after", before, workdir / "cli-server") as server:
        for attempt in range(1, args.repeat + 1):
            for variant in in_turn(CLI_VARIANTS, attempt):
                note(f"CLI {variant} {attempt}/{args.repeat}")
                run = cli_runner(variant, before, server.url)
                runs[variant]["help"].append(run(["--help"])[0])
                seconds, drawn[variant] = run(["push", str(folder), "file://cli/model"])
                runs[variant]["push"].append(seconds)
                runs[variant]["ls"].append(run(["ls", "file"])[0])
    rich_import = [rich_import_seconds() for _ in range(args.repeat)]
    return {
        "size_bytes": args.cli_size * MIB,
        "runs": runs,
        "terminal_bytes_push": drawn,
        "rich_import_seconds": rich_import,
    }


def rich_import_seconds() -> float:
    """What importing rich's progress and table modules adds to a CLI run that draws."""
    command = [sys.executable, "-c", RICH_IMPORT]
    return float(subprocess.run(command, capture_output=True, check=True, text=True).stdout)


def cli_model_folder(folder: Path, size: int) -> Path:
    folder.mkdir(parents=True)
    entry = {"name": "bench/kernel", "shape": [size // 4], "dtype": "float32"}
    document = http_saved([entry], b"").document
    document["weightsManifest"][0]["paths"] = ["model.weights.bin"]
    (folder / "model.json").write_text(json.dumps(document))
    with (folder / "model.weights.bin").open("wb") as file:
        for chunk in weight_chunks(size):
            file.write(chunk)
    return folder


def cli_runner(variant: str, before: Path, server: str) -> Callable[[list[str]], tuple[float, int]]:
    cwd, env = tree_env("before" if variant == "before" else "after", before)
    prefix = ["-c", WITHOUT_RICH] if variant == "after, no rich" else ["-m", "modelshelf"]
    env = {**os.environ, **env, "MODELSHELF_URL": server, "COLUMNS": "100", "TERM": "xterm"}

    def run(arguments: list[str]) -> tuple[float, int]:
        return on_terminal([sys.executable, *prefix, *arguments], cwd, env)

    return run


def on_terminal(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds of a command whose stdout and stderr are a pseudo-terminal; bytes drawn."""
    controller, terminal = pty.openpty()
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal
    )
    os.close(terminal)
    output = bytearray()
    for chunk in _read_terminal(controller):
        output += chunk
    code = process.wait()
    seconds = time.perf_counter() - started
    os.close(controller)
    if code != 0:
        tail = output[-2000:].decode(errors="replace")
        raise RuntimeError(f"{command[2:]} exited {code}: {tail}")
    return seconds, len(output)


def _read_terminal(controller: int) -> Iterator[bytes]:
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the child closed its end
            return
        if not chunk:
            return
        yield chunk


# -- reports ----------------------------------------------------------------------------------


def reports(results: dict[str, Any], args: argparse.Namespace) -> list[Report]:
    service, alone = results["service"], results["in_process"]
    through = Report(
        f"(a, b, d) {args.size} MiB, best of {args.repeat} ({time.strftime('%Y-%m-%d %H:%M')})",
        ["what", "before MB/s", "after MB/s", "after/before", "median after/before"],
    )
    for label, measured, key in [
        ("(a) save through the service", service, "save"),
        ("(b) export through the service", service, "export"),
        ("(d) multipart reader alone", alone, "parse"),
        ("(d) zip writer alone", alone, "zip"),
    ]:
        old, new = (best_rate(measured, tree, key) for tree in TREES)
        medians = [statistics.median(measured["runs"][tree][key]) for tree in TREES]
        through.add(label, old, new, new / old, medians[0] / medians[1])
    rss = Report(
        f"(c) service peak RSS (VmHWM), fresh server, one {args.size} MiB save then its export",
        ["tree", "at start MB", "after save MB", "after export MB"],
    )
    through.notes.append("MB/s of the fastest run; the median ratio is of the runs' medians.")
    for tree, row in results["rss"]["servers"].items():
        rss.add(tree, row["start"] / 1e6, row["save"] / 1e6, row["export"] / 1e6)
    cli = results["cli"]
    terminal = Report(
        f"(e) CLI on a pseudo-terminal, wall seconds, best of {args.repeat}; "
        f"push of {args.cli_size} MiB",
        ["CLI", "--help s", "push s", "push MB/s", "ls s", "push: bytes drawn"],
    )
    for variant in CLI_VARIANTS:
        runs = cli["runs"][variant]
        push = min(runs["push"])
        terminal.add(
            variant,
            min(runs["help"]),
            push,
            megabytes_per_second(cli["size_bytes"], push),
            min(runs["ls"]),
            cli["terminal_bytes_push"][variant],
        )
    seconds = min(cli["rich_import_seconds"])
    terminal.notes.append(f"importing rich.progress and rich.table: {seconds * 1000:.0f} ms")
    return [through, rss, terminal]


def best_rate(measured: dict[str, Any], tree: str, key: str) -> float:
    return megabytes_per_second(measured["size_bytes"], min(measured["runs"][tree][key]))


if __name__ == "__main__":
    sys.exit(main())
