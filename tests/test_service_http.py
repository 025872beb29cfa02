"""The HTTP contract in-process (ASGI): errors, CORS, caching, listing. Nothing partial stored."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from modelshelf.service.app import create_app
from modelshelf.service.settings import Settings
from tests.modelfactory import ModelFixture, dense_model, every_dtype_model, sharded_model
from tests.support.formdata import form_body

ORIGIN = "http://page.example"
BOUNDARY = "----formdata-undici-0123456789"


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    settings = Settings(
        stores={
            "indexeddb": "memory://",
            "file": f"file://{tmp_path / 'files'}",
            "localstorage": f"sqlite://{tmp_path / 'ls.sqlite'}",
        },
        quotas={"localstorage": 3000},
        max_body_bytes=200_000,
        max_json_body_bytes=100_000,
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://127.0.0.1", headers={"Origin": ORIGIN}
    ) as http:
        yield http


def multipart(parts: list[tuple[str, bytes]], boundary: str = BOUNDARY) -> bytes:
    return form_body(parts, boundary)


def tfjs_body(model: ModelFixture) -> bytes:
    return multipart([("model.json", model.model_json), ("model.weights.bin", model.weight_bytes)])


async def post_model(
    client: httpx.AsyncClient,
    path: str,
    body: bytes,
    content_type: str = f"multipart/form-data; boundary={BOUNDARY}",
    method: str = "POST",
) -> httpx.Response:
    return await client.request(method, path, content=body, headers={"Content-Type": content_type})


async def stored_models(client: httpx.AsyncClient, store: str = "indexeddb") -> dict[str, Any]:
    response = await client.get(f"/v1/models/{store}")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code
    assert len(body["message"]) > 10
    assert response.headers["access-control-allow-origin"] in ("*", ORIGIN)


async def test_save_load_round_trip(client: httpx.AsyncClient) -> None:
    model = every_dtype_model()
    saved = await post_model(client, "/v1/models/indexeddb/a/b c", tfjs_body(model))
    assert saved.status_code == 201, saved.text
    result = saved.json()
    assert result["modelUrl"] == "indexeddb://a/b c"
    assert saved.headers["location"] == result["loadUrl"]
    assert saved.headers["access-control-allow-origin"] == "*"
    served = await client.get(result["loadUrl"] + "&token=x")
    assert served.headers["cache-control"] == "no-cache"
    document = served.json()
    path = document["weightsManifest"][0]["paths"][0]
    assert path == f"~v/{result['versionId']}/model.weights.bin"
    weights = await client.get(result["loadUrl"].rsplit("/", 1)[0] + "/" + path + "?token=x")
    assert weights.content == model.weight_bytes
    assert weights.headers["content-length"] == str(len(model.weight_bytes))
    assert "immutable" in weights.headers["cache-control"]
    assert {k: v for k, v in document.items() if k != "weightsManifest"} == {
        k: v for k, v in model.document.items() if k != "weightsManifest"
    }


async def test_put_and_dot_segment_weight_path(client: httpx.AsyncClient) -> None:
    saved = await post_model(client, "/v1/models/file/m", tfjs_body(dense_model()), method="PUT")
    assert saved.status_code == 201
    version = saved.json()["versionId"]
    weights = await client.get(f"/v1/models/file/m/~v/{version}/./model.weights.bin")
    assert weights.content == dense_model().weight_bytes


async def test_json_model_artifacts_save(client: httpx.AsyncClient) -> None:
    model = dense_model()
    artifacts = {key: value for key, value in model.document.items() if key != "weightsManifest"}
    artifacts["weightSpecs"] = model.document["weightsManifest"][0]["weights"]
    artifacts["weightData"] = base64.b64encode(model.weight_bytes).decode()
    saved = await client.post("/v1/models/indexeddb/j", json=artifacts)
    assert saved.status_code == 201, saved.text
    document = (await client.get("/v1/models/indexeddb/j/model.json")).json()
    assert document["userDefinedMetadata"] == {"seed": 0}
    assert document["weightsManifest"][0]["weights"] == artifacts["weightSpecs"]


async def test_boundary_sniffed_when_content_type_overridden(client: httpx.AsyncClient) -> None:
    body = tfjs_body(dense_model())
    for content_type in ("application/json", "multipart/form-data"):
        saved = await post_model(client, "/v1/models/indexeddb/sniffed", body, content_type)
        assert saved.status_code == 201, saved.text


async def test_browser_files_style_upload_keeps_shards(client: httpx.AsyncClient) -> None:
    model = sharded_model()
    saved = await post_model(
        client,
        "/v1/models/file/conv",
        multipart([("model.json", model.model_json), *model.files.items()]),
    )
    assert saved.status_code == 201, saved.text
    info = (await client.get("/v1/models/file/conv")).json()
    assert [f["path"] for f in info["versions"][0]["files"]] == list(model.files)


BAD_SAVES: dict[str, tuple[bytes, str, int, str]] = {
    "model.json not JSON": (multipart([("model.json", b"{nope")]), "", 400, "invalid_model"),
    "missing model.json part": (
        multipart([("model.weights.bin", b"\0" * 4)]),
        "",
        400,
        "invalid_model",
    ),
    "no parts": (f"--{BOUNDARY}--\r\n".encode(), "", 400, "invalid_model"),
    "truncated body": (tfjs_body(dense_model())[:-30], "", 400, "bad_multipart"),
    "wrong boundary": (multipart([("model.json", b"{}")], "other"), "", 400, "bad_multipart"),
    "no boundary, not multipart": (b"hello", "multipart/form-data", 400, "bad_multipart"),
    "size mismatch": (
        multipart([("model.json", dense_model().model_json), ("model.weights.bin", b"\0" * 12)]),
        "",
        400,
        "weight_size_mismatch",
    ),
    "two model.json parts": (
        multipart([("model.json", dense_model().model_json), ("model.json", b"{}")]),
        "",
        400,
        "invalid_model",
    ),
    "unsupported media type": (b"x", "text/plain", 415, "unsupported_media_type"),
    "bad base64 JSON": (
        json.dumps({"modelTopology": {}, "weightData": "***"}).encode(),
        "application/json",
        400,
        "invalid_model",
    ),
    "huge part headers": (
        f"--{BOUNDARY}\r\nX: {'a' * 20000}\r\n\r\n".encode(),
        "",
        400,
        "bad_multipart",
    ),
}


@pytest.mark.parametrize("case", list(BAD_SAVES))
async def test_bad_saves_answer_clearly_and_store_nothing(
    client: httpx.AsyncClient, case: str
) -> None:
    body, content_type, status, code = BAD_SAVES[case]
    response = await post_model(
        client,
        "/v1/models/indexeddb/bad",
        body,
        content_type or f"multipart/form-data; boundary={BOUNDARY}",
    )
    assert_error(response, status, code)
    assert await stored_models(client) == {}


async def test_body_over_limit_is_413(client: httpx.AsyncClient) -> None:
    big = ModelFixture(dense_model().document, {"./model.weights.bin": b"\0" * 300_000})
    big.document["weightsManifest"][0]["weights"] = [
        {"name": "w", "shape": [75_000], "dtype": "float32"}
    ]
    assert_error(
        await post_model(client, "/v1/models/indexeddb/big", tfjs_body(big)),
        413,
        "payload_too_large",
    )

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
        body = tfjs_body(big)
        for offset in range(0, len(body), 65536):
            yield body[offset : offset + 65536]

    response = await client.post(
        "/v1/models/indexeddb/big",
        content=chunked(),
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    assert_error(response, 413, "payload_too_large")
    assert await stored_models(client) == {}


async def test_quota_exceeded_is_507_and_stores_nothing(client: httpx.AsyncClient) -> None:
    big = ModelFixture(dense_model().document, {"./model.weights.bin": b"\0" * 4000})
    big.document["weightsManifest"][0]["weights"] = [
        {"name": "w", "shape": [1000], "dtype": "float32"}
    ]
    response = await post_model(client, "/v1/models/localstorage/q", tfjs_body(big))
    assert_error(response, 507, "quota_exceeded")
    assert await stored_models(client, "localstorage") == {}


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/v1/models/nostore/x/model.json", 404, "unknown_store"),
        ("POST", "/v1/models/nostore/x", 404, "unknown_store"),
        ("GET", "/v1/models/indexeddb/missing/model.json", 404, "model_not_found"),
        ("GET", "/v1/models/indexeddb/missing", 404, "model_not_found"),
        ("DELETE", "/v1/models/indexeddb/missing", 404, "model_not_found"),
        (
            "GET",
            "/v1/models/indexeddb/missing/~v/20260101T000000000000Z-00000000/w.bin",
            404,
            "model_not_found",
        ),
        ("POST", "/v1/models/indexeddb/~reserved", 400, "invalid_name"),
        ("POST", "/v1/models/indexeddb/a/model.json/b", 400, "invalid_name"),
        ("POST", "/v1/models/indexeddb/nul%00name", 400, "invalid_name"),
        ("PATCH", "/v1/models/indexeddb/x", 405, "method_not_allowed"),
        ("GET", "/nowhere", 404, "route_not_found"),
    ],
)
async def test_error_routes(
    client: httpx.AsyncClient, method: str, path: str, status: int, code: str
) -> None:
    response = await client.request(
        method,
        path,
        content=tfjs_body(dense_model()),
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    assert_error(response, status, code)
    if status == 405:
        assert "POST" in response.headers["allow"]


async def test_missing_version_and_weight_file(client: httpx.AsyncClient) -> None:
    saved = (await post_model(client, "/v1/models/indexeddb/v", tfjs_body(dense_model()))).json()
    assert_error(
        await client.get("/v1/models/indexeddb/v/model.json?version=nope"), 404, "version_not_found"
    )
    missing = await client.get(f"/v1/models/indexeddb/v/~v/{saved['versionId']}/other.bin")
    assert_error(missing, 404, "weight_file_not_found")


async def test_preflight_for_put_with_authorization(client: httpx.AsyncClient) -> None:
    for path in (
        "/v1/models/indexeddb/m",
        "/v1/models/indexeddb/m/model.json",
        "/v1/models/indexeddb/m/~v/20260101T000000000000Z-00000000/model.weights.bin",
    ):
        response = await client.options(
            path,
            headers={
                "Access-Control-Request-Method": "PUT",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        assert response.status_code in (200, 204)
        assert response.headers["access-control-allow-origin"] in ("*", ORIGIN)
        assert "PUT" in response.headers["access-control-allow-methods"]
        assert "authorization" in response.headers["access-control-allow-headers"].lower()
        assert int(response.headers["access-control-max-age"]) > 0


async def test_conditional_gets_answer_304(client: httpx.AsyncClient) -> None:
    saved = (await post_model(client, "/v1/models/indexeddb/c", tfjs_body(dense_model()))).json()
    saved["loadUrl"] = saved["loadUrl"].split("?")[0]  # the current version, not this one
    first = await client.get(saved["loadUrl"])
    again = await client.get(saved["loadUrl"], headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    path = first.json()["weightsManifest"][0]["paths"][0]
    weight_url = saved["loadUrl"].rsplit("/", 1)[0] + "/" + path
    weights = await client.get(weight_url)
    cached = await client.get(weight_url, headers={"If-None-Match": weights.headers["etag"]})
    assert cached.status_code == 304
    newer = await post_model(client, "/v1/models/indexeddb/c", tfjs_body(dense_model(1)))
    changed = await client.get(saved["loadUrl"], headers={"If-None-Match": first.headers["etag"]})
    assert changed.status_code == 200
    assert changed.headers["etag"] == f'"{newer.json()["versionId"]}"'


async def test_list_pages_with_link_header(client: httpx.AsyncClient) -> None:
    for index in range(5):
        await post_model(client, f"/v1/models/indexeddb/p/{index}", tfjs_body(dense_model()))
    await post_model(client, "/v1/models/indexeddb/other", tfjs_body(dense_model()))
    seen: dict[str, Any] = {}
    url: str | None = "/v1/models/indexeddb?prefix=p/&limit=2"
    while url:
        page = await client.get(url)
        assert len(page.json()) <= 2
        seen.update(page.json())
        link = page.headers.get("link")
        url = link.split(";")[0].strip("<>") if link else None
    assert sorted(seen) == [f"indexeddb://p/{index}" for index in range(5)]
    assert all(info["modelTopologyType"] == "JSON" for info in seen.values())


async def test_versions_info_and_remove_one_version(client: httpx.AsyncClient) -> None:
    ids = [
        (await post_model(client, "/v1/models/file/vv", tfjs_body(dense_model(seed)))).json()[
            "versionId"
        ]
        for seed in range(2)
    ]
    info = (await client.get("/v1/models/file/vv")).json()
    assert info["currentVersion"] == ids[1]
    assert [v["id"] for v in info["versions"]] == ids
    removed = await client.delete(f"/v1/models/file/vv?version={ids[1]}")
    assert removed.status_code == 200
    assert (await client.get("/v1/models/file/vv")).json()["currentVersion"] == ids[0]


async def test_copy_move_errors(client: httpx.AsyncClient) -> None:
    await post_model(client, "/v1/models/indexeddb/src", tfjs_body(dense_model()))
    same = await client.post(
        "/v1/copy", json={"source": "indexeddb://src", "destination": "indexeddb://src"}
    )
    assert_error(same, 400, "same_source_and_destination")
    missing = await client.post(
        "/v1/move", json={"source": "indexeddb://nope", "destination": "file://x"}
    )
    assert_error(missing, 404, "model_not_found")
    malformed = await client.post("/v1/copy", json={"source": "src", "destination": "file://x"})
    assert_error(malformed, 422, "validation_error")
    unknown = await client.post(
        "/v1/copy", json={"source": "indexeddb://src", "destination": "gcs://x"}
    )
    assert_error(unknown, 404, "unknown_store")
    invalid = await client.post("/v1/copy", json={"source": "indexeddb://src"})
    assert_error(invalid, 422, "validation_error")
    assert (await client.get("/v1/models/indexeddb/src")).status_code == 200


async def test_stores_and_health(client: httpx.AsyncClient) -> None:
    stores = (await client.get("/v1/stores")).json()["stores"]
    assert {(s["name"], s["kind"]) for s in stores} == {
        ("indexeddb", "memory"),
        ("file", "file"),
        ("localstorage", "sqlite"),
    }
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and set(ready.json()["stores"].values()) == {"ok"}


async def test_export_is_what_browser_downloads_writes(client: httpx.AsyncClient) -> None:
    import io
    import zipfile

    model = sharded_model()
    await post_model(
        client,
        "/v1/models/file/team/net",
        multipart([("model.json", model.model_json), *model.files.items()]),
    )
    exported = await client.get("/v1/models/file/team/net/~export")
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-length"] == str(len(exported.content))
    archive = zipfile.ZipFile(io.BytesIO(exported.content))
    assert archive.testzip() is None
    assert sorted(archive.namelist()) == ["net.json", "net.weights.bin"]
    document = json.loads(archive.read("net.json"))
    groups = model.document["weightsManifest"]
    assert document["weightsManifest"] == [
        {
            "paths": ["./net.weights.bin"],
            "weights": [entry for group in groups for entry in group["weights"]],
        }
    ]
    assert archive.read("net.weights.bin") == model.weight_bytes
    renamed = await client.get("/v1/models/file/team/net/~export?prefix=other")
    assert "other.json" in zipfile.ZipFile(io.BytesIO(renamed.content)).namelist()
    assert_error(
        await client.get("/v1/models/file/team/net/~export?prefix=a/b"), 400, "invalid_name"
    )


async def test_json_edge_cases_never_500(client: httpx.AsyncClient) -> None:
    weights = dense_model().weight_bytes

    def with_metadata(raw: bytes) -> bytes:
        return dense_model().model_json.replace(b'{"seed":0}', raw)

    def save(model_json: bytes, name: str) -> Any:
        body = multipart([("model.json", model_json), ("model.weights.bin", weights)])
        return post_model(client, f"/v1/models/indexeddb/{name}", body)

    saved = await save(
        with_metadata(b'{"s":"\\ud800"}'), "surrogate"
    )  # JSON.stringify writes these
    assert saved.status_code == 201, saved.text
    served = await client.get("/v1/models/indexeddb/surrogate/model.json")
    assert served.json()["userDefinedMetadata"] == {"s": "\ud800"}
    assert_error(await save(with_metadata(b"NaN"), "nan"), 400, "invalid_model")
    assert_error(await save(with_metadata(b"[" * 5000 + b"]" * 5000), "deep"), 400, "invalid_model")
    assert (await save(with_metadata(b'{"n":1' + b"0" * 400 + b"}"), "huge")).status_code == 201
    assert_error(
        await save(with_metadata(b'{"n":' + b"1" * 5000 + b"}"), "digits"), 400, "invalid_model"
    )


async def test_model_info_pages_versions_newest_first_with_a_link(
    client: httpx.AsyncClient,
) -> None:
    ids = []
    for seed in range(5):
        response = await client.post(
            "/v1/models/indexeddb/paged",
            content=tfjs_body(dense_model(seed)),
            headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        )
        ids.append(response.json()["versionId"])
    everything = (await client.get("/v1/models/indexeddb/paged")).json()
    assert [v["id"] for v in everything["versions"]] == ids
    first = await client.get("/v1/models/indexeddb/paged", params={"limit": 2})
    assert [v["id"] for v in first.json()["versions"]] == ids[3:]
    assert first.json()["currentVersion"] == ids[-1]
    next_url = first.headers["Link"].split(">")[0].lstrip("<")
    second = await client.get(next_url)
    assert [v["id"] for v in second.json()["versions"]] == ids[1:3]
    assert second.json()["currentVersion"] == ids[-1]
    last = await client.get(second.headers["Link"].split(">")[0].lstrip("<"))
    assert [v["id"] for v in last.json()["versions"]] == ids[:1]
    assert "Link" not in last.headers
