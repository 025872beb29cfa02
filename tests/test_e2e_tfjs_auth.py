"""The real @tensorflow/tfjs in Node against a tokens-mode server, with no client changes.

Saves send the token the way any TF.js app can: ``tf.io.http(url, {requestInit: {headers:
{Authorization: 'Bearer T'}}})``. Loads put it in the model.json URL (``.../model.json?token=T``)
and TF.js copies that query onto every weight URL (protocol doc §5), which is what lets the
weight files through. Refusals surface in TF.js with the server's status; the harness also
reports the refused response's JSON body.
"""

from __future__ import annotations

import importlib.util
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
import pytest

from tests.support.tfjs import tfjs
from tests.support.tokens import bearer, issue_token

pytestmark = pytest.mark.node
ADMIN = "admin-token-e2e-tfjs"
GRAPH_MODEL = Path(__file__).parent / "fixtures" / "graph_model"
GRAPH_INPUT = [[1.0, 2.0, 3.0], [-0.5, 0.25, 4.0]]


@dataclass(frozen=True)
class TokenServer:
    url: str
    writer: str  # write:indexeddb/team/*, write:file/team/*, read:*
    reader: str  # read:*


@pytest.fixture(scope="module")
def server(serve_module: Callable[..., str]) -> TokenServer:
    url = serve_module("indexeddb", "file", auth="tokens", admin_token=ADMIN)
    writer = issue_token(
        url, ADMIN, "tfjs-writer", ["write:indexeddb/team/*", "write:file/team/*", "read:*"]
    )
    return TokenServer(url, writer, issue_token(url, ADMIN, "tfjs-reader", ["read:*"]))


def unique(prefix: str) -> str:
    """A name under team/ (the writer's scope), with a space and non-ASCII."""
    return f"team/{prefix} {uuid.uuid4().hex[:6]}+ü"


def model_url(server: TokenServer, store: str, name: str) -> str:
    return f"{server.url}/v1/models/{store}/{name}"


def with_token(model_json_url: str, token: str) -> str:
    separator = "&" if "?" in model_json_url else "?"
    return f"{model_json_url}{separator}token={quote(token, safe='')}"


def header(token: str) -> list[str]:
    return ["--header", f"Authorization: Bearer {token}"]


def graph_fixture() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "make_graph_model", GRAPH_MODEL.parent / "make_graph_model.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def expected_graph_bits() -> np.ndarray[Any, Any]:
    x = np.array(GRAPH_INPUT, dtype=np.float32)
    want = np.asarray(graph_fixture().expected_output(x), dtype=np.float32)
    return want.view(np.uint32)


def bits(outputs: Any) -> np.ndarray[Any, Any]:
    return np.array(outputs, dtype=np.float32).view(np.uint32)


def stored_versions(server: TokenServer, store: str, name: str) -> int | None:
    """How many versions the server holds for the model (None: no such model)."""
    path = quote(name, safe="/")
    response = httpx.get(
        f"{server.url}/v1/models/{store}/{path}", headers=bearer(ADMIN), timeout=30
    )
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    return len(response.json()["versions"])


@pytest.mark.parametrize("store", ["indexeddb", "file"])
def test_layers_model_saves_with_a_bearer_header_and_loads_with_the_token_query(
    server: TokenServer, store: str
) -> None:
    name = unique("layers")
    url = model_url(server, store, name)
    saved = tfjs("save-layers", "--url", url, "--model", "optimizer", *header(server.writer))
    assert saved["status"] == 201
    assert saved["body"]["modelUrl"] == f"{store}://{name}"

    # Only the query carries the token: model.json and each weight URL TF.js derives from it.
    loaded = tfjs("load-layers", "--url", with_token(f"{url}/model.json", server.reader))
    assert loaded["predictions"] == saved["predictions"]
    assert loaded["weights"] == saved["weights"]
    assert loaded["optimizerWeights"] == saved["optimizerWeights"]
    pinned = tfjs("load-layers", "--url", with_token(saved["body"]["loadUrl"], server.reader))
    assert pinned["weights"] == saved["weights"]

    # The weight files really are guarded: without the copied query they are refused.
    document = httpx.get(with_token(f"{url}/model.json", server.reader), timeout=30).json()
    [weight_path] = document["weightsManifest"][0]["paths"]
    bare = httpx.get(f"{url}/{weight_path}", timeout=30)
    assert bare.status_code == 401 and bare.json()["code"] == "unauthorized"
    tokened = httpx.get(with_token(f"{url}/{weight_path}", server.reader), timeout=30)
    assert tokened.status_code == 200
    assert len(tokened.content) == saved["modelArtifactsInfo"]["weightDataBytes"]


def test_graph_model_saves_with_a_bearer_header_and_loads_with_the_token_query(
    server: TokenServer,
) -> None:
    name = unique("graph")
    url = model_url(server, "indexeddb", name)
    x = json.dumps(GRAPH_INPUT)
    saved = tfjs(
        "save-graph",
        "--folder",
        str(GRAPH_MODEL),
        "--url",
        url,
        "--input",
        x,
        *header(server.writer),
    )
    assert saved["status"] == 201, saved
    assert saved["body"]["modelUrl"] == f"indexeddb://{name}"
    assert np.array_equal(bits(saved["outputs"]), expected_graph_bits())

    loaded = tfjs(
        "load-graph", "--url", with_token(f"{url}/model.json", server.reader), "--input", x
    )
    assert loaded["outputNames"] == saved["outputNames"]
    assert np.array_equal(bits(loaded["outputs"]), expected_graph_bits())


def test_every_converter_shard_gets_the_token_from_the_model_json_query(
    server: TokenServer,
) -> None:
    """Two weight files, two derived URLs: both must carry the token or the decode fails."""
    name = unique("shards")
    url = model_url(server, "indexeddb", name)
    document = json.loads((GRAPH_MODEL / "model.json").read_bytes())
    paths = [path for group in document["weightsManifest"] for path in group["paths"]]
    assert len(paths) == 2
    files = [("model.json", ("model.json", (GRAPH_MODEL / "model.json").read_bytes()))]
    files += [(path, (path, (GRAPH_MODEL / path).read_bytes())) for path in paths]
    uploaded = httpx.post(url, files=files, headers=bearer(server.writer), timeout=30)
    assert uploaded.status_code == 201, uploaded.text
    served = httpx.get(with_token(f"{url}/model.json", server.reader), timeout=30).json()
    assert len(served["weightsManifest"][0]["paths"]) == 2

    loaded = tfjs(
        "load-graph",
        "--url",
        with_token(f"{url}/model.json", server.reader),
        "--input",
        json.dumps(GRAPH_INPUT),
    )
    assert np.array_equal(bits(loaded["outputs"]), expected_graph_bits())


@pytest.mark.parametrize(
    ("who", "place", "status", "code"),
    [
        ("nobody", "team", 401, "unauthorized"),
        ("a wrong token", "team", 401, "unauthorized"),
        ("reader", "team", 403, "forbidden"),
        ("writer", "elsewhere", 403, "forbidden"),
    ],
)
def test_a_refused_layers_save_fails_in_tfjs_with_the_server_status(
    server: TokenServer, who: str, place: str, status: int, code: str
) -> None:
    name = f"{place}/refused {uuid.uuid4().hex[:6]}"
    tokens = {"a wrong token": "msk_0123456789abcdef_not-the-secret"}
    tokens |= {"reader": server.reader, "writer": server.writer}
    args = header(tokens[who]) if who in tokens else []
    url = model_url(server, "indexeddb", name)
    refused = tfjs("save-layers", "--url", url, *args, expect_ok=False)
    assert not refused["ok"]
    # TF.js's own error names the status; the body is the server's ErrorBody.
    assert f"HTTP response status {status}" in refused["error"]
    assert refused["status"] == status
    assert refused["body"]["code"] == code
    if code == "forbidden":
        assert f"write:indexeddb/{name}" in refused["body"]["message"]
    assert stored_versions(server, "indexeddb", name) is None


@pytest.mark.parametrize(("who", "status"), [("nobody", 401), ("reader", 403)])
def test_a_refused_graph_save_fails_in_tfjs_with_the_server_status(
    server: TokenServer, who: str, status: int
) -> None:
    name = unique("refused graph")
    args = header(server.reader) if who == "reader" else []
    refused = tfjs(
        "save-graph",
        "--folder",
        str(GRAPH_MODEL),
        "--url",
        model_url(server, "indexeddb", name),
        "--input",
        json.dumps(GRAPH_INPUT),
        *args,
        expect_ok=False,
    )
    assert f"HTTP response status {status}" in refused["error"]
    assert refused["status"] == status
    assert refused["body"]["code"] == ("unauthorized" if status == 401 else "forbidden")
    assert stored_versions(server, "indexeddb", name) is None


def test_a_load_without_a_token_fails_in_tfjs(server: TokenServer) -> None:
    name = unique("private")
    url = model_url(server, "indexeddb", name)
    tfjs("save-layers", "--url", url, *header(server.writer))
    refused = tfjs("load-layers", "--url", f"{url}/model.json", expect_ok=False)
    assert not refused["ok"]
    assert "failed with status code 401" in refused["error"]


def test_a_share_link_loads_in_tfjs_with_no_other_credentials(server: TokenServer) -> None:
    name = unique("shared")
    url = model_url(server, "indexeddb", name)
    saved = tfjs(
        "save-layers", "--url", url, "--model", "multi", "--seed", "5", *header(server.writer)
    )
    other = unique("not shared")
    tfjs("save-layers", "--url", model_url(server, "indexeddb", other), *header(server.writer))

    shared = httpx.post(
        f"{url}/~share", json={"expiresIn": 3600}, headers=bearer(server.writer), timeout=30
    )
    assert shared.status_code == 201, shared.text
    link = shared.json()
    assert link["url"].startswith(f"{server.url}/v1/models/indexeddb/team/")
    assert link["url"].split("?")[0].endswith("/model.json")
    assert f"token={link['token']}" in link["url"]

    loaded = tfjs("load-layers", "--url", link["url"])
    assert loaded["predictions"] == saved["predictions"]
    assert loaded["weights"] == saved["weights"]

    # The link's token reads that model and nothing else, and writes nothing.
    elsewhere = tfjs(
        "load-layers",
        "--url",
        with_token(f"{model_url(server, 'indexeddb', other)}/model.json", link["token"]),
        expect_ok=False,
    )
    assert "failed with status code 403" in elsewhere["error"]
    overwrite = tfjs("save-layers", "--url", url, *header(link["token"]), expect_ok=False)
    assert overwrite["status"] == 403 and overwrite["body"]["code"] == "forbidden"
    assert stored_versions(server, "indexeddb", name) == 1


def test_a_share_link_loads_a_quantized_view_in_tfjs(server: TokenServer) -> None:
    """TF.js copies ``?token=…&quantize=…`` onto every weight URL of the view (issue 14)."""
    name = unique("shared view")
    url = model_url(server, "indexeddb", name)
    saved = tfjs(
        "save-layers", "--url", url, "--model", "multi", "--seed", "6", *header(server.writer)
    )
    shared = httpx.post(
        f"{url}/~share", json={"expiresIn": 3600}, headers=bearer(server.writer), timeout=30
    )
    assert shared.status_code == 201, shared.text
    link = shared.json()["url"]
    loaded = tfjs("load-layers", "--url", f"{link}&quantize=float16&shard_bytes=1048576")
    expected = np.array(saved["predictions"], dtype=np.float64)
    got = np.array(loaded["predictions"], dtype=np.float64)
    assert not np.array_equal(got, expected)  # really the float16 weights
    error = np.abs(got - expected).max() / np.abs(expected).max()
    assert error <= 1e-3, error
    refused = httpx.get(f"{url}/model.json?quantize=float16", timeout=30)
    assert refused.status_code == 401  # the view is no way around the token
