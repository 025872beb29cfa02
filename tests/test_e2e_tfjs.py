"""The real @tensorflow/tfjs package saves to and loads from a real uvicorn server, every store."""

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
import pytest

from tests.support.tfjs import tfjs

pytestmark = pytest.mark.node
STORES = ["file", "indexeddb", "localstorage", pytest.param("s3", marks=pytest.mark.s3)]
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def server(serve_module: Callable[..., str]) -> str:
    return serve_module()


def unique(prefix: str) -> str:
    return f"{prefix}/model {uuid.uuid4().hex[:6]}+ü"


def model_url(server: str, store: str, name: str) -> str:
    return f"{server}/v1/models/{store}/{name}"


def without_date(info: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in info.items() if key != "dateSaved"}


@pytest.mark.parametrize("store", STORES)
@pytest.mark.parametrize("kind", ["dense", "multi", "optimizer", "noweights"])
def test_save_then_load_bit_for_bit(server: str, store: str, kind: str) -> None:
    name = unique(kind)
    saved = tfjs("save-layers", "--url", model_url(server, store, name), "--model", kind)
    assert saved["status"] == 201
    body = saved["body"]
    assert body["modelUrl"] == f"{store}://{name}"
    # The server computes ModelArtifactsInfo exactly as TF.js did on the client.
    assert without_date(body["modelArtifactsInfo"]) == without_date(saved["modelArtifactsInfo"])
    loaded = tfjs("load-layers", "--url", body["loadUrl"])
    assert loaded["predictions"] == saved["predictions"]
    assert loaded["weights"] == saved["weights"]
    assert loaded["optimizerWeights"] == saved["optimizerWeights"]


@pytest.mark.parametrize("store", STORES)
def test_put_with_authorization_header(server: str, store: str) -> None:
    name = unique("put")
    header = "Authorization: Bearer test-token"
    saved = tfjs(
        "save-layers",
        "--url",
        model_url(server, store, name),
        "--method",
        "PUT",
        "--header",
        header,
        "--seed",
        "7",
    )
    assert saved["status"] == 201
    loaded = tfjs(
        "load-layers", "--url", saved["body"]["loadUrl"] + "&token=a%2Fb", "--header", header
    )
    assert loaded["predictions"] == saved["predictions"]


def _graph_fixture() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "make_graph_model", FIXTURES / "make_graph_model.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upload_folder(url: str, folder: Path) -> httpx.Response:
    """Save a converter output folder as-is: model.json, then one part per manifest path."""
    document = json.loads((folder / "model.json").read_bytes())
    paths = [path for group in document["weightsManifest"] for path in group["paths"]]
    files = [
        ("model.json", ("model.json", (folder / "model.json").read_bytes(), "application/json"))
    ]
    files += [
        (path, (path, (folder / path).read_bytes(), "application/octet-stream")) for path in paths
    ]
    return httpx.post(url, files=files, timeout=30)


@pytest.mark.parametrize("store", STORES)
def test_quantized_sharded_graph_model_loads(server: str, store: str) -> None:
    fixture = _graph_fixture()
    name = unique("graph")
    response = upload_folder(model_url(server, store, name), FIXTURES / "graph_model")
    assert response.status_code == 201, response.text
    x = [[1.0, 2.0, 3.0], [-0.5, 0.25, 4.0]]
    loaded = tfjs("load-graph", "--url", response.json()["loadUrl"], "--input", json.dumps(x))
    got = np.array(loaded["outputs"], dtype=np.float32)
    want = np.asarray(fixture.expected_output(np.array(x, dtype=np.float32)), dtype=np.float32)
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))


@pytest.mark.parametrize("store", STORES)
def test_rest_management_agrees_with_what_was_saved(server: str, store: str) -> None:
    name = unique("managed")
    saved = tfjs("save-layers", "--url", model_url(server, store, name), "--seed", "3")
    with httpx.Client(base_url=server, timeout=30) as client:
        _check_management(client, server, store, name, saved)


def _check_management(
    client: httpx.Client, server: str, store: str, name: str, saved: dict[str, Any]
) -> None:
    listing = client.get(f"/v1/models/{store}", params={"prefix": name.split("/")[0] + "/"})
    assert f"{store}://{name}" in listing.json()
    target_store = "indexeddb" if store != "indexeddb" else "file"
    copy_name = unique("copied")
    copied = client.post(
        "/v1/copy",
        json={"source": f"{store}://{name}", "destination": f"{target_store}://{copy_name}"},
    )
    assert copied.status_code == 200, copied.text
    copy_load = f"{model_url(server, target_store, copy_name)}/model.json"
    assert tfjs("load-layers", "--url", copy_load)["predictions"] == saved["predictions"]
    moved_name = unique("moved")
    moved = client.post(
        "/v1/move",
        json={"source": f"{target_store}://{copy_name}", "destination": f"{store}://{moved_name}"},
    )
    assert moved.status_code == 200, moved.text
    assert client.get(f"/v1/models/{target_store}/{copy_name}").status_code == 404
    moved_load = f"{model_url(server, store, moved_name)}/model.json"
    assert tfjs("load-layers", "--url", moved_load)["predictions"] == saved["predictions"]
    removed = client.delete(f"/v1/models/{store}/{name}")
    assert removed.status_code == 200
    assert removed.json()["url"] == f"{store}://{name}"
    gone = tfjs("load-layers", "--url", saved["body"]["loadUrl"], expect_ok=False)
    assert not gone["ok"] and "404" in gone["error"]
