"""Quantized and resharded views of a version (issue 14): bit-exact against the converter's
formulas, bytes and order kept by resharding, derived once, all-or-nothing, removed with
their version, counted by the quota, and served over HTTP with the query TF.js copies."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import pytest
from fastapi import FastAPI
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from modelshelf.backends import StorageError, UnavailableError, open_backend
from modelshelf.backends.ops import iter_keys, read_all
from modelshelf.modelstore import ModelStore, ViewOptions, Views
from modelshelf.modelstore.errors import (
    InvalidModelError,
    InvalidViewError,
    QuotaExceededError,
    VersionNotFoundError,
)
from modelshelf.modelstore.quantizing import Extremes, quantization_for
from modelshelf.service.app import create_app
from modelshelf.service.settings import Settings
from tests.modelfactory import (
    ModelFixture,
    every_dtype_model,
    http_saved,
    layers_model,
    quantized_model,
)
from tests.storehelpers import save
from tests.support.formdata import form_body
from tests.support.spy_backend import SpyBackend

MIB = 1 << 20


def converter_quantize(
    data: npt.NDArray[np.float32], dtype: Any
) -> tuple[npt.NDArray[Any], dict[str, float]]:
    """tfjs-converter's quantization.quantize_weights, transcribed statement by statement."""
    if dtype in (np.uint8, np.uint16):
        min_val = data.min().astype(np.float64)
        max_val = data.max().astype(np.float64)
        if min_val == max_val:
            return np.zeros_like(data, dtype=dtype), {"min": float(min_val), "scale": 1.0}
        quant_max = np.iinfo(dtype).max
        scale = (max_val - min_val) / quant_max
        if min_val <= 0 <= max_val:
            quantized_zero_point = (0 - min_val) / scale
            nudged_zero_point = np.round(quantized_zero_point)
            nudged_min = -nudged_zero_point * scale
            nudged_max = quant_max * scale + nudged_min
        else:
            nudged_min, nudged_max = min_val, max_val
        quantized = np.round((data.clip(nudged_min, nudged_max) - nudged_min) / scale)
        return quantized.astype(dtype), {"min": float(nudged_min), "scale": float(scale)}
    return data.astype(np.float16), {}


NUMPY_CODES = {"uint8": np.uint8, "uint16": np.uint16, "float16": np.float16}


def _tensors() -> dict[str, npt.NDArray[np.float32]]:
    rng = np.random.default_rng(14)
    return {
        "normal": rng.standard_normal((64, 33)).astype("<f4"),
        "positive": (rng.random(100) * 5 + 1).astype("<f4"),  # 0 outside: no nudge
        "negative": (-rng.random(50) - 0.5).astype("<f4"),
        "constant": np.full(20, 0.75, "<f4"),  # min == max
        "zeros": np.zeros(8, "<f4"),
        "scalar": np.array(3.5, "<f4"),
        "with_zero": np.array([-1.0, 0.0, 0.3, 2.0], "<f4"),
        # uint8: scale 1, so codes are ties, which round half to even; float16: halfway too
        "ties": np.array([0, 0.5, 1.5, 2.5, 254.5, 255, 1 + 2**-11], "<f4"),
        "big": rng.uniform(-3, 7, 400_000).astype("<f4"),  # 1.6 MB: several chunks
    }


def _model(tensors: dict[str, npt.NDArray[Any]], **dtypes: str) -> ModelFixture:
    entries = [
        {"name": name, "shape": list(value.shape), "dtype": dtypes.get(name, "float32")}
        for name, value in tensors.items()
    ]
    return http_saved(entries, b"".join(value.tobytes() for value in tensors.values()))


@pytest.fixture
async def memory_store() -> AsyncIterator[ModelStore]:
    store = ModelStore("indexeddb", open_backend("memory://"))
    yield store
    await store.close()


async def _view_json(views: Views, name: str, version_id: str, options: ViewOptions) -> Any:
    _view, stream = await views.model_json(name, version_id, options)
    return json.loads(b"".join([chunk async for chunk in stream]))


async def _view_bytes(store: ModelStore, name: str, document: dict[str, Any]) -> bytes:
    """Every weight byte of a served document, fetched as TF.js fetches its paths."""
    data = b""
    for group in document["weightsManifest"]:
        for path in group["paths"]:
            data += await read_all(store.backend, f"{name}/{path}")
    return data


def _split(document: dict[str, Any], data: bytes) -> dict[str, tuple[dict[str, Any], bytes]]:
    """Each spec and its bytes, walking fixed-size specs in manifest order."""
    sizes = {"float32": 4, "int32": 4, "bool": 1, "float16": 2, "uint8": 1, "uint16": 2}
    found, offset = {}, 0
    for group in document["weightsManifest"]:
        for spec in group["weights"]:
            stored = (spec.get("quantization") or {}).get("dtype", spec["dtype"])
            size = int(np.prod(spec["shape"])) * sizes[stored]
            found[spec["name"]] = (spec, data[offset : offset + size])
            offset += size
    assert offset == len(data)
    return found


# -- bit-exact against the converter --------------------------------------------------------


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float16"])
async def test_quantized_bytes_are_the_converters(memory_store: ModelStore, dtype: str) -> None:
    tensors = _tensors()
    version = await save(memory_store, "m", _model(tensors))
    views = Views(memory_store)
    options = ViewOptions.parse(dtype, None)
    assert options is not None
    document = await _view_json(views, "m", version.id, options)
    found = _split(document, await _view_bytes(memory_store, "m", document))
    for name, value in tensors.items():
        spec, stored = found[name]
        expected, metadata = converter_quantize(value, NUMPY_CODES[dtype])
        assert spec["quantization"]["dtype"] == dtype, name
        assert spec["quantization"]["original_dtype"] == "float32"
        assert stored == expected.tobytes(), name
        if dtype != "float16":
            assert spec["quantization"]["min"] == metadata["min"], name
            assert spec["quantization"]["scale"] == metadata["scale"], name
    if dtype != "float16":  # a constant tensor: all codes 0; and 0 has an exact code
        assert found["constant"][1] == bytes(20 * (1 if dtype == "uint8" else 2))
        spec, stored = found["with_zero"]
        codes = np.frombuffer(stored, NUMPY_CODES[dtype])
        q = spec["quantization"]
        assert codes[1] * q["scale"] + q["min"] == pytest.approx(0, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    values=hnp.arrays(
        np.float32,
        hnp.array_shapes(max_dims=1, min_side=1, max_side=300),
        elements=st.floats(-1e6, 1e6, width=32),
    ),
    dtype=st.sampled_from(["uint8", "uint16", "float16"]),
    cut=st.integers(1, 299),
)
def test_chunked_quantization_equals_the_converter_whole(
    values: npt.NDArray[np.float32], dtype: str, cut: int
) -> None:
    """Extremes over chunks, then codes chunk by chunk: the converter's whole-array result."""
    extremes = Extremes()
    pieces = [values[:cut], values[cut:]]
    for piece in pieces:
        extremes.add(piece)
    plan = quantization_for(dtype, extremes)  # type: ignore[arg-type]
    if dtype == "float16" and np.abs(values).max() >= 65520:
        assert plan is None  # the converter would write ±Inf
        return
    expected, metadata = converter_quantize(values, NUMPY_CODES[dtype])
    assert plan is not None
    assert b"".join(plan.encode(piece) for piece in pieces) == expected.tobytes()
    if dtype != "float16":
        assert (plan.minimum, plan.scale) == (metadata["min"], metadata["scale"])


async def test_non_finite_and_empty_tensors(memory_store: ModelStore) -> None:
    """Affine codes cannot hold NaN or ±Inf, so such a tensor stays float32 (named in the
    record); float16 holds them exactly, but not a finite value past its range."""
    tensors = {
        "nan": np.array([1.0, np.nan, -2.0], "<f4"),
        "inf": np.array([np.inf, 0.5, -np.inf], "<f4"),
        "huge": np.array([1e6, 1.0], "<f4"),
        "empty": np.zeros((0, 3), "<f4"),
        "fine": np.array([0.25, -0.5], "<f4"),
    }
    version = await save(memory_store, "m", _model(tensors))
    views = Views(memory_store)
    for dtype, kept in (("uint8", {"nan", "inf"}), ("float16", {"huge"})):
        options = ViewOptions.parse(dtype, None)
        assert options is not None
        document = await _view_json(views, "m", version.id, options)
        found = _split(document, await _view_bytes(memory_store, "m", document))
        view = await views.view("m", version.id, options)
        assert set(view.record.kept_float32) == kept
        for name in kept | {"empty"}:
            spec, stored = found[name]
            assert "quantization" not in spec, (dtype, name)
            assert stored == tensors[name].tobytes()
        assert "quantization" in found["fine"][0]
    float16 = ViewOptions.parse("float16", None)
    assert float16 is not None
    document = await _view_json(views, "m", version.id, float16)
    found = _split(document, await _view_bytes(memory_store, "m", document))
    assert found["nan"][1] == tensors["nan"].astype("<f2").tobytes()  # NaN stays NaN
    assert np.array_equal(
        np.frombuffer(found["inf"][1], "<f2"), np.array([np.inf, 0.5, -np.inf], "<f2")
    )


async def test_other_dtypes_and_quantized_weights_pass_through(memory_store: ModelStore) -> None:
    views = Views(memory_store)
    for fixture, unchanged in ((every_dtype_model(), False), (quantized_model(), True)):
        version = await save(memory_store, "m", fixture)
        options = ViewOptions.parse("uint8", None)
        assert options is not None
        document = await _view_json(views, "m", version.id, options)
        data = await _view_bytes(memory_store, "m", document)
        specs = document["weightsManifest"][0]["weights"]
        originals = fixture.document["weightsManifest"][0]["weights"]
        for spec, original in zip(specs, originals, strict=True):
            nonempty = np.prod(original["shape"]) > 0
            if original["dtype"] == "float32" and "quantization" not in original and nonempty:
                assert spec["quantization"]["dtype"] == "uint8"
            else:
                assert spec == original  # int32, bool, string, complex64, quantized, empty
        if unchanged:  # nothing to quantize: the very bytes
            assert data == fixture.weight_bytes


# -- resharding -------------------------------------------------------------------------------


def _two_group_model() -> ModelFixture:
    rng = np.random.default_rng(3)
    first = rng.standard_normal(700_000).astype("<f4")  # 2.8 MB: straddles 1 MiB shards
    strings = b"".join(len(s).to_bytes(4, "little") + s for s in (b"a", b"h\xc3\xa9llo", b""))
    second = rng.standard_normal(300_000).astype("<f4")
    document = {
        "modelTopology": {"node": [], "library": {}, "versions": {}},
        "format": "graph-model",
        "weightsManifest": [
            {
                "paths": ["weights-a.bin"],
                "weights": [
                    {"name": "a", "shape": [700_000], "dtype": "float32"},
                    {"name": "s", "shape": [3], "dtype": "string"},
                ],
            },
            {
                "paths": ["weights-b.bin"],
                "weights": [{"name": "b", "shape": [300_000], "dtype": "float32"}],
            },
        ],
    }
    return ModelFixture(
        document, {"weights-a.bin": first.tobytes() + strings, "weights-b.bin": second.tobytes()}
    )


async def test_resharding_keeps_every_byte_and_the_manifest_order(model_store: ModelStore) -> None:
    fixture = _two_group_model()
    version = await save(model_store, "m", fixture)
    options = ViewOptions.parse(None, MIB)
    assert options is not None
    document = await _view_json(Views(model_store), "m", version.id, options)
    assert await _view_bytes(model_store, "m", document) == fixture.weight_bytes
    groups = document["weightsManifest"]
    assert [g["weights"] for g in groups] == [
        g["weights"] for g in fixture.document["weightsManifest"]
    ]
    prefix = f"~v/{version.id}/~view/keep-{MIB}/"
    assert groups[0]["paths"] == [prefix + f"group1-shard{i}of3.bin" for i in (1, 2, 3)]
    assert groups[1]["paths"] == [prefix + "group2-shard1of2.bin", prefix + "group2-shard2of2.bin"]
    sizes = [
        (await model_store.backend.head(f"m/{path}")).size
        for group in groups
        for path in group["paths"]
    ]
    assert sizes[:2] == [MIB, MIB] and sizes[3] == MIB
    assert sizes[2] == 2_800_000 + 4 * 3 + 1 + 6 - 2 * MIB
    # Everything else in model.json is the original's, byte for byte where it could be.
    kept = {key: value for key, value in document.items() if key != "weightsManifest"}
    assert kept == {k: v for k, v in fixture.document.items() if k != "weightsManifest"}


async def test_quantized_view_with_strings_and_groups(memory_store: ModelStore) -> None:
    fixture = _two_group_model()
    version = await save(memory_store, "m", fixture)
    options = ViewOptions.parse("uint8", MIB)
    assert options is not None
    views = Views(memory_store)
    document = await _view_json(views, "m", version.id, options)
    data = await _view_bytes(memory_store, "m", document)
    first = np.frombuffer(fixture.files["weights-a.bin"][:2_800_000], "<f4")
    second = np.frombuffer(fixture.files["weights-b.bin"], "<f4")
    expected_a, _ = converter_quantize(first, np.uint8)
    expected_b, _ = converter_quantize(second, np.uint8)
    strings = fixture.files["weights-a.bin"][2_800_000:]
    assert data == expected_a.tobytes() + strings + expected_b.tobytes()
    view = await views.view("m", version.id, options)
    assert view.record.weight_bytes == len(data)
    assert view.record.quantized == 2
    assert len(data) < len(fixture.weight_bytes) / 3.9


# -- derived once, all or nothing, removed with the version, within the quota -----------------


async def test_simultaneous_first_requests_derive_once() -> None:
    spy = SpyBackend(open_backend("memory://"))
    store = ModelStore("indexeddb", spy)
    version = await save(store, "m", layers_model(2))
    views = Views(store)
    options = ViewOptions.parse("float16", None)
    assert options is not None
    spy.reset()
    results = await asyncio.gather(*[views.view("m", version.id, options) for _ in range(10)])
    assert len({id(view) for view in results}) == 1
    assert spy.calls["put"] == 1 + 1 + 1  # marker, one shard, record: it ran once
    spy.reset()
    again = Views(store)  # another process: the stored view is read, not derived
    assert (await again.view("m", version.id, options)).record == results[0].record
    assert spy.calls["put"] == 0


async def test_a_view_that_fails_midway_leaves_nothing() -> None:
    failing = {"on": True}

    def fail(operation: str, key: str) -> StorageError | None:
        if failing["on"] and operation == "put" and key.endswith("shard2of3.bin"):
            return UnavailableError("the disk went away")
        return None

    spy = SpyBackend(open_backend("memory://"), fail)
    store = ModelStore("indexeddb", spy)
    version = await save(store, "m", _two_group_model())
    before = sorted([info.key async for info in iter_keys(spy)])
    views = Views(store)
    options = ViewOptions.parse(None, MIB)
    assert options is not None
    with pytest.raises(UnavailableError):
        await views.view("m", version.id, options)
    assert sorted([info.key async for info in iter_keys(spy)]) == before
    assert await views.sizes("m", version.id) == []
    failing["on"] = False
    view = await views.view("m", version.id, options)  # the next request makes it whole
    assert len(view.record.files) == 5


async def test_removing_a_version_removes_its_views(model_store: ModelStore) -> None:
    old = await save(model_store, "m", layers_model(1))
    await save(model_store, "m", layers_model(2))
    views = Views(model_store)
    for quantize in ("float16", "uint8"):
        options = ViewOptions.parse(quantize, None)
        assert options is not None
        await views.view("m", old.id, options)
    assert len(await views.sizes("m", old.id)) == 2
    await model_store.remove("m", old.id)
    left = [info.key async for info in iter_keys(model_store.backend) if old.id in info.key]
    assert left == []
    assert await views.sizes("m", old.id) == []
    with pytest.raises(VersionNotFoundError):
        await views.weight_file("m", old.id, f"~view/float16-{4 * MIB}/group1-shard1of1.bin")


async def test_a_view_past_the_quota_is_refused_and_the_original_still_loads(
    backend_url: str,
) -> None:
    fixture = _two_group_model()
    store = ModelStore("localstorage", open_backend(backend_url), quota_bytes=5_500_000)
    try:
        version = await save(store, "m", fixture)
        before = await store.usage()
        views = Views(store)
        reshard = ViewOptions.parse(None, MIB)  # as big as the original: does not fit
        assert reshard is not None
        with pytest.raises(QuotaExceededError, match="quota"):
            await views.view("m", version.id, reshard)
        assert await store.usage() == before
        assert json.loads(await store.published_model_json("m", None))["weightsManifest"]
        small = ViewOptions.parse("uint8", None)  # a quarter of it fits, and counts
        assert small is not None
        view = await views.view("m", version.id, small)
        assert await store.usage() >= before + view.record.weight_bytes
    finally:
        await store.close()


def test_options_are_checked_in_one_place() -> None:
    assert ViewOptions.parse(None, None) is None
    with pytest.raises(InvalidViewError, match="float16, uint8, uint16"):
        ViewOptions.parse("int4", None)
    with pytest.raises(InvalidViewError, match="1048576"):
        ViewOptions.parse(None, MIB - 1)
    with pytest.raises(InvalidViewError, match="67108864"):
        ViewOptions.parse("uint8", 64 * MIB + 1)
    options = ViewOptions.parse("uint16", 2 * MIB)
    assert options is not None
    assert ViewOptions.from_segment(options.segment) == options
    assert ViewOptions.from_segment("keep-01048576") is None
    assert ViewOptions.from_segment("int4-1048576") is None


def test_a_saved_weight_path_cannot_take_the_views_place() -> None:
    from modelshelf.modelstore.parsing import parse_model_json

    fixture = http_saved([{"name": "w", "shape": [1], "dtype": "float32"}], b"\0" * 4)
    fixture.document["weightsManifest"][0]["paths"] = ["~view/keep-1048576/group1-shard1of1.bin"]
    with pytest.raises(InvalidModelError, match="reserved"):
        parse_model_json(fixture.model_json)


# -- over HTTP --------------------------------------------------------------------------------


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(stores={"indexeddb": f"sqlite://{tmp_path / 'db.sqlite'}"})
    app: FastAPI = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            yield http


async def _post(client: httpx.AsyncClient, fixture: ModelFixture) -> str:
    parts = [("model.json", fixture.model_json), *fixture.files.items()]
    boundary = "----formdata-undici-0123456789"
    response = await client.post(
        "/v1/models/indexeddb/m",
        content=form_body(parts, boundary),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 201, response.text
    version_id: str = response.json()["versionId"]
    return version_id


async def test_http_view_of_an_alias_with_the_query_tfjs_copies(client: httpx.AsyncClient) -> None:
    fixture = layers_model(5)
    version_id = await _post(client, fixture)
    await _post(client, layers_model(6))  # the current version is another one
    response = await client.put(
        "/v1/models/indexeddb/m/~aliases/prod", json={"versionId": version_id}
    )
    assert response.status_code in (200, 201), response.text
    query = "?version=prod&quantize=uint8&shard_bytes=1048576"
    response = await client.get("/v1/models/indexeddb/m/model.json" + query)
    assert response.status_code == 200, response.text
    assert response.headers["x-model-version"] == version_id
    assert response.headers["x-model-view"] == "uint8-1048576"
    etag = response.headers["etag"]
    assert etag == f'"{version_id}-uint8-1048576"'
    document = response.json()
    total = 0
    for group in document["weightsManifest"]:
        for path in group["paths"]:
            weights = await client.get(f"/v1/models/indexeddb/m/{path}{query}")  # as TF.js asks
            assert weights.status_code == 200, weights.text
            assert weights.headers["cache-control"] == "public, max-age=31536000, immutable"
            again = await client.get(
                f"/v1/models/indexeddb/m/{path}", headers={"If-None-Match": weights.headers["etag"]}
            )
            assert again.status_code == 304
            ranged = await client.get(
                f"/v1/models/indexeddb/m/{path}", headers={"Range": "bytes=0-3"}
            )
            assert ranged.status_code == 206 and ranged.content == weights.content[:4]
            total += len(weights.content)
    assert total == sum(len(data) for data in fixture.files.values()) // 4
    cached = await client.get(
        "/v1/models/indexeddb/m/model.json" + query, headers={"If-None-Match": etag}
    )
    assert cached.status_code == 304
    cross = await client.get(
        "/v1/models/indexeddb/m/model.json" + query, headers={"Origin": "http://page.example"}
    )
    assert "x-model-view" in cross.headers["access-control-expose-headers"].lower()
    plain = await client.get("/v1/models/indexeddb/m/model.json?version=prod")
    assert plain.headers["etag"] != etag and "x-model-view" not in plain.headers


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("quantize=int4", "float16, uint8, uint16"),
        ("shard_bytes=5", "1048576"),
        ("quantize=float16&original=true", "original"),
    ],
)
async def test_http_bad_view_options(client: httpx.AsyncClient, query: str, fragment: str) -> None:
    await _post(client, layers_model(1))
    response = await client.get(f"/v1/models/indexeddb/m/model.json?{query}")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_view"
    assert fragment in response.json()["message"]


async def test_http_unknown_view_files_are_404(client: httpx.AsyncClient) -> None:
    version_id = await _post(client, layers_model(1))
    for path in ("~view/int4-1048576/group1-shard1of1.bin", "~view/keep-1048576/nope.bin"):
        response = await client.get(f"/v1/models/indexeddb/m/~v/{version_id}/{path}")
        assert response.status_code == 404, path
        assert response.json()["code"] == "weight_file_not_found"


async def test_gc_removes_a_view_whose_derivation_was_killed(model_store: ModelStore) -> None:
    from datetime import UTC, datetime, timedelta

    from modelshelf.backends.ops import put_bytes
    from modelshelf.modelstore import layout
    from modelshelf.modelstore.sweeping import collect_garbage
    from modelshelf.modelstore.version_ids import iso_date

    version = await save(model_store, "m", layers_model(3))
    views = Views(model_store)
    done = ViewOptions.parse("uint16", None)
    assert done is not None
    await views.view("m", version.id, done)  # committed: gc keeps it
    hours_ago = iso_date(datetime.now(UTC) - timedelta(hours=2)).encode()
    just_now = iso_date(datetime.now(UTC)).encode()
    planted = {}
    for segment, began in (("uint8-4194304", hours_ago), ("float16-4194304", just_now)):
        shard = layout.weight_file_key("m", version.id, f"~view/{segment}/group1-shard1of1.bin")
        planted[segment] = [shard, layout.view_marker_key("m", version.id, segment)]
        await put_bytes(model_store.backend, planted[segment][0], b"\1" * 10)
        await put_bytes(model_store.backend, planted[segment][1], began)
    before = set(await _keys(model_store))
    dry = await collect_garbage(model_store, 3600, dry_run=True)
    assert [item.name for item in dry.removed] == planted["uint8-4194304"]
    assert {item.kind for item in dry.removed} == {"view_file"}
    assert set(await _keys(model_store)) == before
    await collect_garbage(model_store, 3600)
    assert set(await _keys(model_store)) == before - set(planted["uint8-4194304"])
    assert [size.options for size in await views.sizes("m", version.id)] == [done]
    again = ViewOptions.parse("uint8", None)
    assert again is not None
    assert (await views.view("m", version.id, again)).record.quantized == 4  # made anew


async def _keys(store: ModelStore) -> list[str]:
    return [info.key async for info in iter_keys(store.backend)]
