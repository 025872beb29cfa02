"""A big model.json save and load never stalls the event loop (issue 8, item 7)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx

from modelshelf.service.settings import Settings
from tests.support.formdata import form_body
from tests.support.live_server import live_server

MODEL_JSON_BYTES = 32_000_000
STALL_LIMIT_SECONDS = 0.5
BOUNDARY = "----formdata-undici-0123456789"


def graph_model_json(size: int) -> bytes:
    """A converter-style graph model: a modelTopology of many small nodes."""
    node = (
        '{{"name": "StatefulPartitionedCall/model/block_{0}/conv/Conv2D", "op": "Conv2D", '
        '"input": ["block_{0}/Relu", "block_{0}/kernel"], "device": "/device:CPU:0", '
        '"attr": {{"T": {{"type": "DT_FLOAT"}}, "strides": {{"list": {{"i": ["1", "1", "1", '
        '"1"]}}}}, "padding": {{"s": "U0FNRQ=="}}, "epsilon": {{"f": 0.001}}}}}}'
    )
    nodes = [node.format(index) for index in range(size // len(node.format(0)))]
    return (
        '{"format": "graph-model", "modelTopology": {"node": ['
        + ", ".join(nodes)
        + '], "versions": {"producer": 1482}}, "weightsManifest": [{"paths": '
        '["group1-shard1of1.bin"], "weights": [{"name": "w", "shape": [2], '
        '"dtype": "float32"}]}]}'
    ).encode()


def test_healthz_answers_during_a_big_model_json_save_and_load(tmp_path: Path) -> None:
    model_json = graph_model_json(MODEL_JSON_BYTES)
    body = form_body([("model.json", model_json), ("group1-shard1of1.bin", b"\0" * 8)], BOUNDARY)
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    with live_server(Settings(stores={"file": f"file://{tmp_path}"})) as server:
        latencies: list[float] = []
        done = threading.Event()
        poller = threading.Thread(target=_poll, args=(f"{server}/healthz", latencies, done))
        with httpx.Client(base_url=server, timeout=60) as client:
            client.get("/healthz")  # connections and imports warmed up
            poller.start()
            try:
                saved = client.post("/v1/models/file/big", content=body, headers=headers)
                loaded = [client.get("/v1/models/file/big/model.json") for _ in range(2)]
            finally:
                done.set()
                poller.join()
    assert saved.status_code == 201, saved.text
    assert all(response.status_code == 200 for response in loaded)
    assert loaded[0].headers["content-length"] == str(len(loaded[0].content))
    assert len(latencies) > 10
    assert max(latencies) < STALL_LIMIT_SECONDS, f"/healthz took {max(latencies):.2f} s"


def _poll(url: str, latencies: list[float], done: threading.Event) -> None:
    with httpx.Client(timeout=60) as client:
        while not done.is_set():
            started = time.perf_counter()
            client.get(url).raise_for_status()
            latencies.append(time.perf_counter() - started)
            time.sleep(0.01)
