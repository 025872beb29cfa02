"""The real TF.js in Node loads every view of a layers model and of a graph model (issue 14).

Predictions on fixed inputs stay within each quantization's bound of the original's, a
reshard alone changes no bit, and the small graph model's outputs are exactly what its
dequantized view weights give: TF.js dequantizes a view as it dequantizes converter output.
The converter fixture itself (already quantized, two shards) passes through every view
unchanged, and a layers model saved by TF.js with a 1024x600 kernel loads from 1 MiB shards
the kernel straddles, its weight bytes halved (float16) or quartered (uint8).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import pytest

from tests.support.tfjs import JS_DIR, require_tfjs, tfjs

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


def test_tfjs_loads_each_view_of_the_converter_fixture_unchanged(server: str) -> None:
    """tests/fixtures/graph_model: 2 shards, ``b`` straddling them, every weight already
    quantized. A view quantizes float32 weights only, so each view passes these codes through
    (resharded) and TF.js outputs exactly what the fixture's own dequantization gives."""
    fixture = _graph_fixture()
    folder = FIXTURES / "graph_model"
    document = json.loads((folder / "model.json").read_text())
    paths = document["weightsManifest"][0]["paths"]
    assert len(paths) == 2
    files = [
        ("model.json", ("model.json", (folder / "model.json").read_bytes(), "application/json"))
    ]
    files += [
        (path, (path, (folder / path).read_bytes(), "application/octet-stream")) for path in paths
    ]
    response = httpx.post(
        f"{server}/v1/models/file/fixture-{uuid.uuid4().hex[:8]}", files=files, timeout=60
    )
    assert response.status_code == 201, response.text
    load_url = response.json()["loadUrl"]
    raw = b"".join((folder / path).read_bytes() for path in paths)
    x = [[1.0, 2.0, 3.0], [-0.5, 0.25, 4.0]]
    exact = fixture.expected_output(x)
    assert np.abs(exact).max() > 0.5  # not a zero model
    for view in ["", *VIEWS]:
        url = f"{load_url}&{view}" if view else load_url
        served, stored = _served(url)
        assert b"".join(stored.values()) == raw, view
        assert _specs(served) == _specs(document), view
        loaded = tfjs("load-graph", "--url", url, "--input", json.dumps(x))
        got = np.array(loaded["outputs"], np.float32)
        assert np.array_equal(got.view(np.uint32), exact.view(np.uint32)), view


# --- a layers model with a 1024x600 kernel, saved by TF.js itself -------------------

WIDE_VIEWS = [*VIEWS, "quantize=float16&shard_bytes=1048576"]


def _view_predict(*args: str) -> dict[str, Any]:
    """tests/js/view_predict.mjs: save or load the wide layers model, predictions only."""
    require_tfjs()
    completed = subprocess.run(
        ["node", str(JS_DIR / "view_predict.mjs"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=JS_DIR,
    )
    lines = completed.stdout.strip().splitlines()
    assert lines, f"view_predict printed nothing; stderr:\n{completed.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(lines[-1])
    assert result.get("ok"), f"view_predict {args[0]} failed: {result}\n{completed.stderr[-2000:]}"
    return result


def _weight_files(model_json_url: str) -> tuple[dict[str, Any], list[bytes]]:
    """model.json and each weight file as served, each checked against its Content-Length."""
    document = httpx.get(model_json_url, timeout=60).raise_for_status().json()
    base, _, query = model_json_url.partition("?")
    folder = base.rsplit("/", 1)[0]
    contents = []
    for group in document["weightsManifest"]:
        for path in group["paths"]:
            response = httpx.get(f"{folder}/{path}?{query}", timeout=60).raise_for_status()
            assert int(response.headers["content-length"]) == len(response.content)
            contents.append(response.content)
    return document, contents


def _decoded(
    served: dict[str, bytes], document: dict[str, Any]
) -> dict[str, npt.NDArray[np.float64]]:
    fixture = _graph_fixture()
    return {
        name: (
            fixture.dequantize(served[name], spec)
            if "quantization" in spec
            else np.frombuffer(served[name], "<f4").reshape(spec["shape"])
        ).astype(np.float64)
        for name, spec in _specs(document).items()
    }


def _forward(weights: dict[str, npt.NDArray[np.float64]], x: npt.NDArray[np.float64]) -> Any:
    hidden = np.maximum(x @ weights["wide/kernel"] + weights["wide/bias"], 0)
    return hidden @ weights["head/kernel"] + weights["head/bias"]


def _error_bound(
    spec: dict[str, Any], original: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """How far each view weight may be from its original: half a step for uint8/uint16 (the
    nudged min moves the top code by at most that, and clipped values land on it), half
    precision's relative rounding for float16, nothing for a reshard."""
    quantization = spec.get("quantization")
    if quantization is None:
        return np.zeros_like(original)
    if quantization["dtype"] == "float16":
        return np.abs(original) * 2.0**-11 + 2.0**-24
    return np.full_like(original, quantization["scale"] / 2 * (1 + 1e-6) + 1e-9)


@pytest.fixture(scope="module")
def wide(server: str) -> dict[str, Any]:
    url = f"{server}/v1/models/indexeddb/wide-{uuid.uuid4().hex[:8]}"
    saved = _view_predict("save", "--url", url, "--seed", "14")
    document, contents = _weight_files(f"{url}/model.json")
    _, stored = _served(f"{url}/model.json")
    weights = _decoded(stored, document)
    assert weights["wide/kernel"].size >= 600_000
    x = np.array(saved["inputs"], np.float64)
    want = np.array(saved["predictions"], np.float64)
    # The numpy forward pass is the model TF.js saved (float32 sums against float64 ones).
    assert np.abs(_forward(weights, x) - want).max() <= 1e-4 * np.abs(want).max()
    assert np.abs(want).max() > 1  # not a zero model
    return {
        "url": url,
        "x": x,
        "want": want,
        "weights": weights,
        "bytes": sum(len(c) for c in contents),
    }


@pytest.mark.parametrize("view", WIDE_VIEWS)
def test_tfjs_loads_views_of_a_wide_layers_model_within_bounds(
    wide: dict[str, Any], view: str
) -> None:
    view_url = f"{wide['url']}/model.json?{view}"
    document, contents = _weight_files(view_url)
    paths = [path for group in document["weightsManifest"] for path in group["paths"]]
    size = sum(len(c) for c in contents)
    ratio = size / wide["bytes"]
    if "shard_bytes=1048576" in view:  # the 2.4 MB kernel straddles 1 MiB shards
        assert len(paths) == -(-size // MIB) >= 2, paths
        assert all(len(c) == MIB for c in contents[:-1])
        assert all("~view/" in path for path in paths), paths
    else:  # quantize alone: 4 MiB shards, so all in one
        assert len(paths) == 1, paths
    expected_ratio = {"float16": 0.5, "uint16": 0.5, "uint8": 0.25}
    quantize = next((v.split("=")[1] for v in view.split("&") if v.startswith("quantize=")), None)
    assert abs(ratio - expected_ratio.get(quantize or "", 1.0)) < 0.005, ratio
    if quantize is None:
        assert ratio == 1

    _, stored = _served(view_url)
    seen = _decoded(stored, document)
    got = np.array(_view_predict("load", "--url", view_url, "--seed", "14")["predictions"])
    want, x = wide["want"], wide["x"]
    peak = np.abs(want).max()
    # TF.js holds exactly the weights the served view describes...
    assert np.abs(got - _forward(seen, x)).max() <= 1e-4 * peak
    error = np.abs(got - want)
    if quantize is None:
        assert np.array_equal(got, want)
        return
    # ...and they are within the quantization's bound of the original's.
    specs = _specs(document)
    bound = {name: _error_bound(specs[name], value) for name, value in wide["weights"].items()}
    for name, value in wide["weights"].items():
        assert (np.abs(seen[name] - value) <= bound[name]).all(), name
        assert specs[name].get("quantization", {}).get("dtype") == quantize
    w = wide["weights"]
    first = np.abs(x) @ bound["wide/kernel"] + bound["wide/bias"]  # relu is 1-Lipschitz
    hidden = np.maximum(x @ w["wide/kernel"] + w["wide/bias"], 0)
    second = first @ (np.abs(w["head/kernel"]) + bound["head/kernel"])
    second += hidden @ bound["head/kernel"] + bound["head/bias"]
    assert (error <= second * 1.001 + 1e-4 * peak).all(), (error.max(), second.min())
    assert error.max() > 0  # really quantized
    relative = error.max() / peak
    # The worst case above adds every weight's error with one sign; real errors mostly cancel
    # (measured: float16 3e-4, uint8 7e-3, uint16 2e-5 of the peak), so also a plain ceiling.
    assert relative <= {"float16": 1e-3, "uint16": 1e-3, "uint8": 0.02}[quantize], relative
