"""Issue 8, item 7: the memory and event-loop cost of a big model.json, saved and loaded.

Three shapes of --size MB: a converter-style graph model (a huge modelTopology), a layers
model with a huge weightsManifest, and a big userDefinedMetadata. Each case runs in a child
process of its own (this script again, with the hidden ``--one``) on a ``file`` store:
  - parse:  the model layer's parse alone, as before (``parse_whole``) and now
    (``parse_model_json``), peak RSS growth over the model.json's size;
  - save / load: ``ModelStore.save`` and a load of the served model.json through a real
    uvicorn server in the child, while a thread polls /healthz; the longest poll is the
    event-loop stall. RSS growth is VmHWM (reset through /proc/self/clear_refs before the
    step) minus VmRSS before it, divided by the model.json size.
Baseline, measured in the same run: the same bytes read from a file and written to another
(growth ~0), and an idle /healthz poll for the latency floor.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchkit import MB, REPOSITORY, Report, note, run_metadata, write_json

sys.path.insert(0, str(REPOSITORY))  # run as a script: the project's packages live there

SHAPES = ("graph", "layers", "metadata")
BOUNDARY = "----formdata-undici-0123456789"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.one, args.model_json, Path(args.workdir))))
        return 0
    return run_all(args)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=63, metavar="MB", help="model.json (63)")
    parser.add_argument("--shapes", default=",".join(SHAPES), help="subset of the shapes")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--model-json", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# -- the parent --------------------------------------------------------------------------------


def run_all(args: argparse.Namespace) -> int:
    results = []
    with tempfile.TemporaryDirectory(prefix="modelshelf-bench-") as temp:
        for shape in ["baseline", *args.shapes.split(",")]:
            path = Path(temp) / f"{shape}.json"
            path.write_bytes(model_json(shape if shape != "baseline" else "graph", args.size))
            note(f"{shape}: {path.stat().st_size / MB:.0f} MB model.json in a child process")
            command = [sys.executable, __file__, "--one", shape, "--model-json", str(path)]
            finished = subprocess.run(
                [*command, "--workdir", temp], stdout=subprocess.PIPE, text=True, check=True
            )
            results.append(json.loads(finished.stdout.strip().splitlines()[-1]))
            path.unlink()
    print(report(results, args.size).render())
    write_json(args.json, {"run": run_metadata(size_mb=args.size), "results": results})
    return 0


def report(results: list[dict[str, Any]], size: int) -> Report:
    table = Report(
        f"model_json_memory: {size} MB model.json; RSS growth as x model.json size "
        f"({time.strftime('%Y-%m-%d %H:%M')})",
        [
            "shape",
            "whole parse",
            "split parse",
            "save",
            "load",
            "s before",
            "s now",
            "save stall s",
            "load stall s",
        ],
    )
    for result in results:
        table.add(
            result["shape"],
            result.get("parse_before_x"),
            result.get("parse_now_x"),
            result["save_x"],
            result["load_x"],
            result.get("parse_before_s"),
            result.get("parse_now_s"),
            result["save_stall_s"],
            result["load_stall_s"],
        )
    table.notes.append(
        "baseline = copying the model.json file (save) and reading it back (load), with the "
        "idle /healthz latency as its stall;\nstall = the longest /healthz answer during the "
        "step (a thread polls every 10 ms); s = seconds of the parse alone;\nwhole parse = "
        "parse_whole (json.loads of the whole document, the pre-issue-8 way, with today's "
        "byte counter); split parse = parse_model_json."
    )
    return table


# -- the child ---------------------------------------------------------------------------------


def run_one(shape: str, path: str, workdir: Path) -> dict[str, Any]:
    data = Path(path).read_bytes()
    if shape == "baseline":
        return measure_baseline(data, workdir)
    result: dict[str, Any] = {"shape": shape, "bytes": len(data)}
    from modelshelf.modelstore.parsing import parse_model_json, parse_whole

    for label, parse in (("before", parse_whole), ("now", parse_model_json)):
        growth, seconds = measured(lambda parse=parse: parse(data, "~v/x/"))  # type: ignore[misc]
        result[f"parse_{label}_x"] = growth / len(data)
        result[f"parse_{label}_s"] = seconds
    result.update(measure_service(data, workdir / f"store-{shape}"))
    return result


def measure_baseline(data: bytes, workdir: Path) -> dict[str, Any]:
    copy = workdir / "copy.json"
    save, _ = measured(lambda: copy.write_bytes(data))
    load, _ = measured(lambda: copy.read_bytes())
    stall = poll_while(lambda: time.sleep(1.0), None)
    return {
        "shape": "baseline",
        "bytes": len(data),
        "save_x": save / len(data),
        "load_x": load / len(data),
        "save_stall_s": stall,
        "load_stall_s": stall,
    }


def measure_service(data: bytes, store: Path) -> dict[str, Any]:
    import httpx

    from modelshelf.service.settings import Settings
    from tests.support.formdata import form_body
    from tests.support.live_server import live_server

    body = form_body([("model.json", data), weight_part(data)], BOUNDARY)
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    result: dict[str, Any] = {}
    settings = Settings(stores={"file": f"file://{store}"})
    with live_server(settings) as server, httpx.Client(base_url=server, timeout=600) as client:
        client.get("/healthz")

        def save() -> None:
            client.post("/v1/models/file/big", content=body, headers=headers).raise_for_status()

        def load() -> None:
            client.get("/v1/models/file/big/model.json").raise_for_status()

        for step, action in (("save", save), ("load", load)):
            growth: list[int] = []
            stall = poll_while(lambda a=action, g=growth: g.append(measured(a)[0]), server)
            result[f"{step}_x"] = growth[0] / len(data)
            result[f"{step}_stall_s"] = stall
    return result


def measured(action: Any) -> tuple[int, float]:
    """Peak RSS growth while ``action`` runs, and its seconds."""
    Path("/proc/self/clear_refs").write_text("5")
    before = status("VmRSS")
    started = time.perf_counter()
    action()
    return status("VmHWM") - before, time.perf_counter() - started


def poll_while(action: Any, server: str | None) -> float:
    """Run ``action`` while a thread polls /healthz; the longest answer in seconds."""
    import httpx

    if server is None:
        from modelshelf.service.settings import Settings
        from tests.support.live_server import live_server

        with live_server(Settings(stores={})) as idle:
            return poll_while(action, idle)
    latencies: list[float] = []
    done = threading.Event()

    def poll() -> None:
        with httpx.Client(timeout=600) as client:
            while not done.is_set():
                started = time.perf_counter()
                client.get(f"{server}/healthz")
                latencies.append(time.perf_counter() - started)
                time.sleep(0.01)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        action()
    finally:
        done.set()
        poller.join()
    return max(latencies)


def status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


# -- the model.json shapes ---------------------------------------------------------------------


def model_json(shape: str, size_mb: int) -> bytes:
    target = size_mb * MB
    if shape == "graph":
        return graph_model(target)
    if shape == "layers":
        return layers_model(target)
    return metadata_model(target)


def graph_model(target: int) -> bytes:
    from tests.test_event_loop_stall import graph_model_json

    return graph_model_json(target)


def layers_model(target: int) -> bytes:
    entry = '{{"name":"model/layer_{0}/dense/kernel","shape":[1,1],"dtype":"float32"}}'
    count = target // len(entry.format(100000))
    weights = ",".join(entry.format(index) for index in range(count))
    return (
        '{"modelTopology":{"class_name":"Sequential","config":{"name":"m","layers":[]}},'
        '"format":"layers-model","convertedBy":null,"weightsManifest":[{"paths":'
        f'["./model.weights.bin"],"weights":[{weights}]}}]}}'
    ).encode()


def metadata_model(target: int) -> bytes:
    rng = random.Random(1)
    vocab = {f"{rng.getrandbits(40):x}é{index}": index for index in range(target // 30)}
    document = {
        "modelTopology": {"class_name": "Sequential", "config": {"name": "m", "layers": []}},
        "weightsManifest": [
            {
                "paths": ["./model.weights.bin"],
                "weights": [{"name": "w", "shape": [2], "dtype": "float32"}],
            }
        ],
        "userDefinedMetadata": {"tokenizer": {"vocab": vocab}},
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def weight_part(data: bytes) -> tuple[str, bytes]:
    """The weight file the manifest asks for: 4 bytes per float32 of shape [1,1] or [2]."""
    if b"group1-shard1of1.bin" in data:
        return "group1-shard1of1.bin", b"\0" * 8
    if b'"shape":[1,1]' in data:
        return "model.weights.bin", b"\0" * (4 * data.count(b'"shape":[1,1]'))
    return "model.weights.bin", b"\0" * 8


if __name__ == "__main__":
    sys.exit(main())
