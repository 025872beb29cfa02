"""The real TF.js in Node loads every view of a layers model and of a graph model (issue 14).

Predictions on fixed inputs stay within each quantization's bound of the original's, a
reshard alone changes no bit, and the small graph model's outputs are exactly what its
dequantized view weights give: TF.js dequantizes a view as it dequantizes converter output.
"""

from __future__ import annotations

import importlib.util
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import pytest

from tests.support.tfjs import tfjs

FIXTURES = Path(__file__).parent / "fixtures"
MIB = 1 << 20
VIEWS = ["quantize=float16", "quantize=uint8", "quantize=uint16", "shard_bytes=1048576"]


@pytest.fixture(scope="module")
def server(serve_module: Callable[..., str]) -> str:
    return serve_module("indexeddb", "file")


def _graph_fixture() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "make_graph_model", FIXTURES / "make_graph_model.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _graph_model(weights: dict[str, npt.NDArray[np.float32]], nodes: list[Any]) -> dict[str, Any]:
    return {
        "format": "graph-model",
        "generatedBy": "2.15.0",
        "convertedBy": "TensorFlow.js Converter v4.22.0",
        "modelTopology": {"node": nodes, "library": {}, "versions": {"producer": 1645}},
        "weightsManifest": [
            {
                "paths": ["model.weights.bin"],
                "weights": [
                    {"name": name, "shape": list(value.shape), "dtype": "float32"}
                    for name, value in weights.items()
                ],
            }
        ],
    }


def _upload(url: str, document: dict[str, Any], weights: bytes) -> str:
    files = [
        ("model.json", ("model.json", json.dumps(document).encode(), "application/json")),
        ("model.weights.bin", ("model.weights.bin", weights, "application/octet-stream")),
    ]
    response = httpx.post(url, files=files, timeout=60)
    assert response.status_code == 201, response.text
    load_url: str = response.json()["loadUrl"]
    return load_url


def _served(url: str) -> tuple[dict[str, Any], dict[str, bytes]]:
    """A view's model.json and each weight's stored bytes, fetched as TF.js fetches them."""
    response = httpx.get(url, timeout=60)
    assert response.status_code == 200, response.text
    document = response.json()
    base, _, query = url.partition("?")
    folder = base.rsplit("/", 1)[0]
    data = b"".join(
        httpx.get(f"{folder}/{path}?{query}", timeout=60).content
        for group in document["weightsManifest"]
        for path in group["paths"]
    )
    found, offset = {}, 0
    for group in document["weightsManifest"]:
        for spec in group["weights"]:
            size = int(np.prod(spec["shape"])) * {"float16": 2, "uint16": 2, "uint8": 1}.get(
                (spec.get("quantization") or {}).get("dtype", ""), 4
            )
            found[spec["name"]] = data[offset : offset + size]
            offset += size
    assert offset == len(data)
    return document, found


def _specs(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        spec["name"]: spec for group in document["weightsManifest"] for spec in group["weights"]
    }


@pytest.mark.parametrize("view", VIEWS)
def test_tfjs_loads_each_view_of_a_graph_model_exactly_as_dequantized(
    server: str, view: str
) -> None:
    fixture = _graph_fixture()
    weights = {name: data for name, (data, _qdtype) in fixture.WEIGHTS.items()}
    document = _graph_model(weights, fixture.graph_def()["node"])
    document["signature"] = fixture.signature()
    name = f"graph-{uuid.uuid4().hex[:8]}"
    load_url = _upload(
        f"{server}/v1/models/file/{name}", document, b"".join(v.tobytes() for v in weights.values())
    )
    x = [[1.0, 2.0, 3.0], [-0.5, 0.25, 4.0]]
    original = tfjs("load-graph", "--url", load_url, "--input", json.dumps(x))
    view_url = f"{load_url}&{view}"
    loaded = tfjs("load-graph", "--url", view_url, "--input", json.dumps(x))
    served, stored = _served(view_url)
    specs = _specs(served)
    seen = {
        name: fixture.dequantize(stored[name], spec)
        if "quantization" in spec
        else np.frombuffer(stored[name], "<f4").reshape(spec["shape"])
        for name, spec in specs.items()
    }
    for name in weights:  # TF.js holds exactly the dequantized view weights
        assert np.array_equal(np.array(loaded["weights"][name], np.float32), seen[name].ravel())
    inputs = np.array(x, np.float32)
    matmul = (inputs.astype(np.float64) @ seen["W"].astype(np.float64)).astype(np.float32)
    exact = (matmul + seen["b"]) * seen["s"]
    got = np.array(loaded["outputs"], np.float32)
    assert np.array_equal(got.view(np.uint32), exact.view(np.uint32))
    want = np.array(original["outputs"], np.float64)
    error = np.abs(got - want)
    if view == "shard_bytes=1048576":
        assert np.array_equal(got, want.astype(np.float32))
    elif view == "quantize=float16":
        assert error.max() / np.abs(want).max() <= 1e-3
    else:  # each code is within scale/2 of its value: bound the output by that
        half = {name: specs[name]["quantization"]["scale"] / 2 for name in weights}
        w, b, s = (weights[name].astype(np.float64) for name in ("W", "b", "s"))
        inner = np.abs(inputs) @ np.full(w.shape, half["W"]) + half["b"]
        bound = inner * (np.abs(s) + half["s"]) + np.abs(inputs @ w + b) * half["s"]
        assert (error <= bound * (1 + 1e-6) + 1e-6).all(), (error, bound)
        assert error.max() > 0  # the codes really are uint8/uint16


def _big_graph() -> tuple[dict[str, Any], dict[str, npt.NDArray[np.float32]]]:
    """``Identity = x MatMul W + b``, W 1024x600: 2.5 MB, so 1 MiB shards split it."""
    rng = np.random.default_rng(14)
    weights = {
        "W": (rng.standard_normal((1024, 600)) * 0.05).astype(np.float32),
        "b": rng.standard_normal(600).astype(np.float32),
    }

    def const(name: str, shape: tuple[int, ...]) -> dict[str, Any]:
        dims = {"dim": [{"size": str(size)} for size in shape]}
        return {
            "name": name,
            "op": "Const",
            "attr": {
                "value": {"tensor": {"dtype": "DT_FLOAT", "tensorShape": dims}},
                "dtype": {"type": "DT_FLOAT"},
            },
        }

    float_attr = {"T": {"type": "DT_FLOAT"}}
    nodes = [
        {
            "name": "x",
            "op": "Placeholder",
            "attr": {
                "dtype": {"type": "DT_FLOAT"},
                "shape": {"shape": {"dim": [{"size": "-1"}, {"size": "1024"}]}},
            },
        },
        const("W", (1024, 600)),
        const("b", (600,)),
        {
            "name": "MatMul",
            "op": "MatMul",
            "input": ["x", "W"],
            "attr": {**float_attr, "transpose_a": {"b": False}, "transpose_b": {"b": False}},
        },
        {"name": "add", "op": "AddV2", "input": ["MatMul", "b"], "attr": float_attr},
        {"name": "Identity", "op": "Identity", "input": ["add"], "attr": float_attr},
    ]
    return _graph_model(weights, nodes), weights


def test_tfjs_loads_sharded_views_of_a_bigger_model_and_bytes_drop(server: str) -> None:
    document, weights = _big_graph()
    name = f"big-{uuid.uuid4().hex[:8]}"
    raw = b"".join(value.tobytes() for value in weights.values())
    load_url = _upload(f"{server}/v1/models/indexeddb/{name}", document, raw)
    x = np.random.default_rng(1).standard_normal((2, 1024)).round(2).tolist()
    original = tfjs("load-graph", "--url", load_url, "--input", json.dumps(x), timeout=300)
    want = np.array(original["outputs"], np.float64)
    ratios = {}
    for view in VIEWS:
        url = (
            f"{load_url}&{view}&shard_bytes=1048576"
            if "quantize" in view
            else load_url + "&" + view
        )
        served, stored = _served(url)
        paths = served["weightsManifest"][0]["paths"]
        size = sum(len(data) for data in stored.values())
        ratios[view] = size / len(raw)
        if view in ("shard_bytes=1048576", "quantize=float16"):
            assert len(paths) >= 2, paths  # W straddles the two shards; TF.js joins them
        loaded = tfjs("load-graph", "--url", url, "--input", json.dumps(x), timeout=300)
        got = np.array(loaded["outputs"], np.float64)
        relative = np.abs(got - want).max() / np.abs(want).max()
        if view == "shard_bytes=1048576":
            assert np.array_equal(got, want)
            assert stored["W"] + stored["b"] == raw
        elif view == "quantize=float16":
            assert 0 < relative <= 1e-3
        else:
            specs = _specs(served)
            half_w = specs["W"]["quantization"]["scale"] / 2
            half_b = specs["b"]["quantization"]["scale"] / 2
            bound = np.abs(np.array(x)).sum(axis=1, keepdims=True) * half_w + half_b
            assert (np.abs(got - want) <= bound * 1.001 + 1e-5).all()
    assert ratios["shard_bytes=1048576"] == 1
    assert abs(ratios["quantize=float16"] - 0.5) < 0.01
    assert abs(ratios["quantize=uint16"] - 0.5) < 0.01
    assert abs(ratios["quantize=uint8"] - 0.25) < 0.01


@pytest.mark.parametrize("view", VIEWS)
def test_tfjs_loads_each_view_of_a_layers_model(server: str, view: str) -> None:
    name = f"layers-{uuid.uuid4().hex[:8]}"
    url = f"{server}/v1/models/indexeddb/{name}"
    saved = tfjs("save-layers", "--url", url, "--model", "multi", "--seed", "7")
    loaded = tfjs("load-layers", "--url", f"{url}/model.json?{view}")
    want = np.array(saved["predictions"], np.float64)
    got = np.array(loaded["predictions"], np.float64)
    difference = np.abs(got - want).max() / np.abs(want).max()
    if view == "shard_bytes=1048576":
        assert loaded["weights"] == saved["weights"] and np.array_equal(got, want)
        return
    assert difference > 0  # really quantized weights
    assert difference <= {"quantize=float16": 1e-3, "quantize=uint16": 1e-3}.get(view, 0.05)
    for before, after in zip(saved["weights"], loaded["weights"], strict=True):
        assert before["name"] == after["name"]
        original = np.array(before["values"], np.float64)
        now = np.array(after["values"], np.float64)
        span = original.max() - original.min() if original.size else 0.0
        step = {"quantize=uint8": span / 255, "quantize=uint16": span / 65535}.get(view)
        if step is None:  # float16: the relative error of half precision
            assert (np.abs(now - original) <= np.abs(original) * 2**-11 + 2**-24).all()
        else:  # each code within half a step (min nudged onto a code: a step wider span)
            assert (np.abs(now - original) <= step * 1.01 + 1e-7).all(), before["name"]


def test_tfjs_loads_a_view_of_an_aliased_version(server: str) -> None:
    name = f"aliased-{uuid.uuid4().hex[:8]}"
    url = f"{server}/v1/models/indexeddb/{name}"
    first = tfjs("save-layers", "--url", url, "--model", "dense", "--seed", "1")
    tfjs("save-layers", "--url", url, "--model", "dense", "--seed", "2")
    versions = httpx.get(url, timeout=30).json()["versions"]
    response = httpx.put(f"{url}/~aliases/prod", json={"versionId": versions[0]["id"]}, timeout=30)
    assert response.status_code in (200, 201), response.text
    loaded = tfjs("load-layers", "--url", f"{url}/model.json?version=prod&quantize=float16")
    want = np.array(first["predictions"], np.float64)
    got = np.array(loaded["predictions"], np.float64)
    assert 0 < np.abs(got - want).max() <= 1e-3 * np.abs(want).max()
