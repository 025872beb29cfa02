"""The SDK's own logic, against httpx.MockTransport: URLs, headers, framing, weight joins.

No server: each handler plays the wire as the protocol doc describes it, so these tests say
what the SDK sends and how it reads answers. tests/test_sdk.py runs it against a real server.
"""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest

import modelshelf
from modelshelf import ModelArtifacts
from modelshelf.schemas.modeljson import HTTP_WEIGHTS_PATH

VERSION = "20261201T000000000000Z-00000000"


def _client(handler: object, **options: object) -> modelshelf.Client:
    transport = httpx.MockTransport(handler)  # type: ignore[arg-type]
    return modelshelf.Client("http://shelf.test", transport=transport, **options)  # type: ignore[arg-type]


def test_load_joins_every_weight_file_in_manifest_order() -> None:
    seen: list[str] = []
    shards = {"group1-shard1of2.bin": b"\x00\x00\x80?", "group1-shard2of2.bin": b"\x00\x00\x00@"}
    document = {
        "modelTopology": {"node": []},
        "format": "graph-model",
        "weightsManifest": [
            {
                "paths": [f"~v/{VERSION}/{path}" for path in shards],
                "weights": [{"name": "w", "shape": [2], "dtype": "float32"}],
            }
        ],
    }

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        if request.url.path.endswith("/model.json"):
            return httpx.Response(200, json=document)
        return httpx.Response(200, content=shards[request.url.path.rsplit("/", 1)[1]])

    with _client(handler) as client:
        artifacts = client.load("indexeddb://team/a b")
    base = "/v1/models/indexeddb/team/a%20b"
    assert seen == [f"{base}/model.json", *[f"{base}/~v/{VERSION}/{path}" for path in shards]]
    np.testing.assert_array_equal(artifacts.weights()["w"], np.array([1, 2], np.float32))
    assert artifacts.format == "graph-model"


def test_load_asks_for_a_version_and_sends_the_token() -> None:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json={"modelTopology": {}, "weightsManifest": []})

    with _client(handler, token="T0KEN") as client:
        client.load("file://m", version=VERSION)
    assert requests[0].url.params["version"] == VERSION
    assert requests[0].headers["Authorization"] == "Bearer T0KEN"


def test_save_sends_model_json_first_then_the_weights_as_tf_io_http_does() -> None:
    captured: dict[str, bytes | str] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        captured["type"] = request.headers["content-type"]
        captured["body"] = request.read()
        captured["path"] = request.url.raw_path.decode()
        info = {
            "dateSaved": "2026-12-01T00:00:00.000Z",
            "modelTopologyType": "JSON",
            "modelTopologyBytes": 2,
            "weightSpecsBytes": 3,
            "weightDataBytes": 8,
        }
        body = {"modelArtifactsInfo": info, "modelUrl": "indexeddb://m", "versionId": VERSION}
        return httpx.Response(201, json=body)

    artifacts = ModelArtifacts.from_weights({"w": np.array([1.5, 2.5], np.float32)}, {"k": 1})
    with _client(handler) as client:
        result = client.save("indexeddb://m", artifacts)
    assert result.versionId == VERSION and captured["path"] == "/v1/models/indexeddb/m"
    boundary = str(captured["type"]).split("boundary=")[1].encode()
    parts = bytes(captured["body"]).split(b"--" + boundary)[1:-1]
    names = [part.split(b'name="')[1].split(b'"')[0] for part in parts]
    assert names == [b"model.json", b"model.weights.bin"]
    model_json = json.loads(parts[0].split(b"\r\n\r\n", 1)[1].rstrip(b"\r\n"))
    # getModelJSONForModelArtifacts's order: leading keys (convertedBy always), the manifest
    assert list(model_json) == ["modelTopology", "convertedBy", "weightsManifest"]
    assert model_json["weightsManifest"][0]["paths"] == [HTTP_WEIGHTS_PATH]
    assert (
        parts[1].split(b"\r\n\r\n", 1)[1].rstrip(b"\r\n")
        == np.array([1.5, 2.5], np.float32).tobytes()
    )


def test_an_unreachable_server_is_unavailable_and_says_where() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with _client(handler) as client, pytest.raises(modelshelf.UnavailableError) as raised:
        client.list_stores()
    assert "shelf.test" in str(raised.value)


def test_list_models_follows_every_link_page() -> None:
    pages = {
        None: ({"indexeddb://a": None}, "cursor=a"),
        "a": ({"indexeddb://b": None}, None),
    }
    info = {
        "dateSaved": "2026-12-01T00:00:00.000Z",
        "modelTopologyType": "JSON",
        "modelTopologyBytes": 1,
        "weightSpecsBytes": 1,
        "weightDataBytes": 1,
    }

    def handler(request: httpx.Request) -> httpx.Response:
        body, following = pages[request.url.params.get("cursor")]
        headers = {"Link": f'<http://shelf.test/v1/models/indexeddb?{following}>; rel="next"'}
        return httpx.Response(
            200, json={key: info for key in body}, headers=headers if following else {}
        )

    with _client(handler) as client:
        assert sorted(client.list_models("indexeddb")) == ["indexeddb://a", "indexeddb://b"]


def test_list_versions_can_ask_for_the_newest_few() -> None:
    asked: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.params.get("limit"))
        return httpx.Response(404, json={"code": "model_not_found", "message": "no model"})

    with _client(handler) as client:
        for limit in (None, 3):
            with pytest.raises(modelshelf.NotFoundError):
                client.list_versions("indexeddb://m", limit=limit)
    assert asked == [None, "3"]
