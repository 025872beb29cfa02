"""Model semantics over every store: round trips, validation, versions, atomicity, quota."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable

import pytest

from modelshelf.backends import Backend
from modelshelf.backends.ops import read_all
from modelshelf.modelstore import ModelStore, WeightUpload
from modelshelf.modelstore.errors import (
    InvalidModelError,
    InvalidNameError,
    ModelNotFoundError,
    QuotaExceededError,
    VersionNotFoundError,
    WeightSizeMismatchError,
)
from tests.modelfactory import ALL_MODELS, ModelFixture, dense_model, http_saved
from tests.storehelpers import all_keys, chunks_of, load_weights, save, uploads

NAME = "demo/management/model 1+ü"


@pytest.mark.parametrize("kind", list(ALL_MODELS))
async def test_round_trip_byte_exact(model_store: ModelStore, kind: str) -> None:
    model = ALL_MODELS[kind]()
    version = await save(model_store, NAME, model)
    assert await model_store.original_model_json(NAME, version.id) == model.model_json
    assert await load_weights(model_store, NAME) == model.weight_bytes
    assert [item.size for item in version.files] == [len(data) for data in model.files.values()]
    assert version.modelArtifactsInfo.weightDataBytes == len(model.weight_bytes)


async def test_published_model_json_keeps_every_key_and_points_at_the_version(
    model_store: ModelStore,
) -> None:
    model = dense_model()
    model.document["unknownKey"] = {"kept": [1, 2.5]}
    model.document["trainingConfig"] = {"loss": "mse", "optimizer_config": {}}
    version = await save(model_store, NAME, model)
    expected = dict(model.document)
    expected["weightsManifest"] = [
        {**model.document["weightsManifest"][0], "paths": [f"~v/{version.id}/model.weights.bin"]}
    ]
    loaded = [await model_store.published_model_json(NAME, None), b""]
    if model_store.backend.capabilities.plain_objects:  # the copy static servers serve
        loaded[1] = await read_all(model_store.backend, f"{NAME}/model.json")
        assert loaded[1] == loaded[0]
    else:
        assert not (await model_store.backend.list(f"{NAME}/model.json")).items
    served = json.loads(loaded[0])
    assert served == expected
    assert list(served) == list(expected)


async def test_info_matches_tfjs_byte_counts(model_store: ModelStore) -> None:
    model = http_saved([{"name": "x", "shape": [1], "dtype": "float32"}], b"\0" * 4)
    model.document["modelTopology"] = {"a": "é", "n": 1.0, "e": 1e-7}
    version = await save(model_store, NAME, model)
    info = version.modelArtifactsInfo
    assert info.modelTopologyBytes == len('{"a":"é","n":1,"e":1e-7}'.encode())
    assert info.weightSpecsBytes == len('[{"name":"x","shape":[1],"dtype":"float32"}]')
    assert info.modelTopologyType == "JSON"
    assert info.dateSaved.endswith("Z") and len(info.dateSaved) == 24


def _mutate(change: Callable[[ModelFixture], None]) -> ModelFixture:
    model = dense_model()
    change(model)
    return model


def _entry(model: ModelFixture, index: int = 0) -> dict:  # type: ignore[type-arg]
    return model.document["weightsManifest"][0]["weights"][index]  # type: ignore[no-any-return]


BAD_MODELS: dict[str, Callable[[], ModelFixture]] = {
    "bad dtype": lambda: _mutate(lambda m: _entry(m).update(dtype="float64")),
    "negative dim": lambda: _mutate(lambda m: _entry(m).update(shape=[-1, 3])),
    "string dim": lambda: _mutate(lambda m: _entry(m).update(shape=["4", 3])),
    "no name": lambda: _mutate(lambda m: _entry(m).pop("name")),
    "quantization null": lambda: _mutate(lambda m: _entry(m).update(quantization=None)),
    "uint8 without scale": lambda: _mutate(
        lambda m: _entry(m).update(quantization={"dtype": "uint8", "min": 0})
    ),
    "float16 on int32": lambda: _mutate(
        lambda m: _entry(m).update(dtype="int32", quantization={"dtype": "float16"})
    ),
    "quantized bool": lambda: _mutate(
        lambda m: _entry(m).update(
            dtype="bool", quantization={"dtype": "uint8", "min": 0, "scale": 1}
        )
    ),
    "too many bytes": lambda: _mutate(
        lambda m: m.files.update({"./model.weights.bin": b"\0" * 61})
    ),
    "too few bytes": lambda: _mutate(lambda m: m.files.update({"./model.weights.bin": b"\0" * 59})),
    "string prefix overruns": lambda: http_saved(
        [{"name": "s", "shape": [1], "dtype": "string"}], b"\x05\0\0\0abc"
    ),
    "escaping path": lambda: _mutate(
        lambda m: m.document["weightsManifest"][0].update(paths=["../x.bin"])
    ),
    "absolute path": lambda: _mutate(
        lambda m: m.document["weightsManifest"][0].update(paths=["/etc/x.bin"])
    ),
    "query in path": lambda: _mutate(
        lambda m: m.document["weightsManifest"][0].update(paths=["w.bin?x=1"])
    ),
    "duplicate path": lambda: _mutate(
        lambda m: m.document["weightsManifest"].append(
            {"paths": ["model.weights.bin"], "weights": []}
        )
    ),
    "neither topology nor manifest": lambda: ModelFixture({"format": "layers-model"}),
    "paths not a list": lambda: _mutate(
        lambda m: m.document["weightsManifest"][0].update(paths="model.weights.bin")
    ),
    "weights but no paths": lambda: _mutate(
        lambda m: m.document["weightsManifest"][0].update(paths=[])
    ),
}


@pytest.mark.parametrize("case", list(BAD_MODELS))
async def test_invalid_models_store_nothing(model_store: ModelStore, case: str) -> None:
    model = BAD_MODELS[case]()
    with pytest.raises(InvalidModelError) as caught:
        await save(model_store, NAME, model)
    assert str(caught.value)
    assert await all_keys(model_store) == []


@pytest.mark.parametrize("payload", [b"not json", b"[1,2]", b"\xff\xfe", b'{"a":'])
async def test_unparseable_model_json_is_rejected(model_store: ModelStore, payload: bytes) -> None:
    with pytest.raises(InvalidModelError, match=r"model\.json"):
        await model_store.save(NAME, payload)
    assert await all_keys(model_store) == []


async def test_size_mismatch_is_its_own_error(model_store: ModelStore) -> None:
    model = _mutate(lambda m: m.files.update({"./model.weights.bin": b"\0" * 64}))
    with pytest.raises(WeightSizeMismatchError, match="longer"):
        await save(model_store, NAME, model)


async def test_unknown_and_out_of_order_files_are_rejected(model_store: ModelStore) -> None:
    model = ALL_MODELS["sharded"]()
    with pytest.raises(InvalidModelError, match=r"not in model\.json"):
        await model_store.save(NAME, model.model_json, uploads({"stray.bin": b"x"}))
    shuffled = dict(reversed(list(model.files.items())))
    with pytest.raises(InvalidModelError, match="order"):
        await model_store.save(NAME, model.model_json, uploads(shuffled))
    assert await all_keys(model_store) == []


async def test_topology_only_save_stores_empty_weight_files(model_store: ModelStore) -> None:
    model = dense_model()
    del model.document["weightsManifest"][0]["weights"]
    version = await model_store.save(NAME, model.model_json)
    assert [(item.path, item.size) for item in version.files] == [("model.weights.bin", 0)]


@pytest.mark.parametrize(
    "name", ["", "/abs", "a/../b", "a//b", "nul\x00x", "a/~v/x", "~models", "a/model.json", "x/"]
)
async def test_invalid_names_rejected(model_store: ModelStore, name: str) -> None:
    with pytest.raises(InvalidNameError):
        await save(model_store, name, dense_model())


async def _failing_upload(data: bytes) -> AsyncIterator[WeightUpload]:
    async def broken() -> AsyncIterator[bytes]:
        yield data[:10]
        raise ConnectionResetError("client went away")

    yield WeightUpload("./model.weights.bin", broken())


async def test_failed_save_keeps_previous_version_and_leaves_nothing(
    model_store: ModelStore,
) -> None:
    first = await save(model_store, NAME, dense_model(1))
    keys_before = await all_keys(model_store)
    second = dense_model(2)
    with pytest.raises(ConnectionResetError):
        await model_store.save(NAME, second.model_json, _failing_upload(second.weight_bytes))
    assert await all_keys(model_store) == keys_before
    assert (await model_store.version(NAME)).id == first.id
    assert await load_weights(model_store, NAME) == dense_model(1).weight_bytes


async def test_cancelled_save_leaves_nothing(model_store: ModelStore) -> None:
    started = asyncio.Event()

    async def hanging() -> AsyncIterator[WeightUpload]:
        async def body() -> AsyncIterator[bytes]:
            yield b"\0" * 8
            started.set()
            await asyncio.sleep(3600)
            yield b""

        yield WeightUpload("./model.weights.bin", body())

    task = asyncio.create_task(model_store.save(NAME, dense_model().model_json, hanging()))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await all_keys(model_store) == []


async def test_concurrent_saves_all_become_versions(model_store: ModelStore) -> None:
    models = [dense_model(seed) for seed in range(3)]
    versions = await asyncio.gather(*(save(model_store, NAME, m) for m in models))
    ids = await model_store.version_ids(NAME)
    assert sorted(v.id for v in versions) == ids
    newest = max(versions, key=lambda v: v.id)
    assert (await model_store.version(NAME)).id == newest.id
    expected = models[versions.index(newest)]
    assert await load_weights(model_store, NAME) == expected.weight_bytes
    published = json.loads(await model_store.published_model_json(NAME, None))
    assert published["weightsManifest"][0]["paths"] == [f"~v/{newest.id}/model.weights.bin"]


async def test_versions_stay_loadable_and_remove_moves_current(model_store: ModelStore) -> None:
    ids = [(await save(model_store, NAME, dense_model(seed))).id for seed in range(3)]
    assert [v.id for v in await model_store.versions(NAME)] == ids
    assert await load_weights(model_store, NAME, ids[0]) == dense_model(0).weight_bytes
    await model_store.remove(NAME, ids[2])
    assert (await model_store.version(NAME)).id == ids[1]
    published = json.loads(await model_store.published_model_json(NAME, None))
    assert published["weightsManifest"][0]["paths"][0].startswith(f"~v/{ids[1]}/")
    with pytest.raises(VersionNotFoundError):
        await model_store.version(NAME, ids[2])
    await model_store.remove(NAME, ids[0])
    await model_store.remove(NAME, ids[1])
    with pytest.raises(ModelNotFoundError):
        await model_store.version(NAME)
    assert await all_keys(model_store) == []


async def test_remove_whole_model(model_store: ModelStore) -> None:
    await save(model_store, NAME, dense_model(0))
    await save(model_store, NAME, dense_model(1))
    await save(model_store, "other", dense_model(2))
    removed = await model_store.remove(NAME)
    assert len(removed) == 2
    assert list((await model_store.list_models()).models) == ["other"]
    with pytest.raises(ModelNotFoundError):
        await model_store.remove(NAME)


async def test_list_models_prefix_and_pages(model_store: ModelStore) -> None:
    names = ["a", "a/b", "a/b/c", "ab", "b", "a b", "ü"]
    for name in names:
        await save(model_store, name, dense_model())
    await save(model_store, "a", dense_model(5))
    listed: list[str] = []
    cursor = None
    while True:
        page = await model_store.list_models(cursor=cursor, limit=2)
        listed += list(page.models)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert sorted(listed) == sorted(names)
    assert len(listed) == len(set(listed))
    assert sorted((await model_store.list_models("a/")).models) == ["a/b", "a/b/c"]
    current = (await model_store.list_models("a")).models["a"]
    assert current.id == (await model_store.version("a")).id


async def test_quota_refuses_and_stores_nothing(backend: Backend) -> None:
    store = ModelStore("localstorage", backend, quota_bytes=4000)
    await save(store, "small", dense_model())
    keys = await all_keys(store)
    big = http_saved([{"name": "w", "shape": [1000], "dtype": "float32"}], b"\0" * 4000)
    with pytest.raises(QuotaExceededError, match="quota"):
        await save(store, "big", big)
    assert await all_keys(store) == keys
    with pytest.raises(QuotaExceededError):
        await store.save("big", big.model_json, uploads(big.files), expected_bytes=10_000)
    assert await store.usage() <= 4000


async def test_chunk_boundaries_do_not_matter(model_store: ModelStore) -> None:
    model = ALL_MODELS["every_dtype"]()
    for size in (1, 3, 4, 5, 1000):
        await model_store.save(f"c{size}", model.model_json, uploads(model.files, size))
        assert await load_weights(model_store, f"c{size}") == model.weight_bytes


async def test_weights_that_straddle_files(model_store: ModelStore) -> None:
    model = ALL_MODELS["sharded"](shard_bytes=6)  # tensors cross shard boundaries
    await save(model_store, NAME, model)
    assert await load_weights(model_store, NAME) == model.weight_bytes


async def test_group_files_must_hold_their_own_bytes(model_store: ModelStore) -> None:
    model = ALL_MODELS["sharded"]()
    paths = list(model.files)
    data = model.weight_bytes
    # Same total, but the group boundary falls in the wrong file.
    files = {paths[0]: data[:20], **{p: b"" for p in paths[1:-1]}, paths[-1]: data[20:]}
    with pytest.raises(WeightSizeMismatchError):
        await save(model_store, NAME, ModelFixture(model.document, files))


async def test_stream_is_consumed_lazily(model_store: ModelStore) -> None:
    """The store pulls chunks as it writes them; it never drains the source first."""
    model = dense_model()
    pulled: list[int] = []

    async def tracked() -> AsyncIterator[WeightUpload]:
        async def body() -> AsyncIterator[bytes]:
            async for chunk in chunks_of(model.weight_bytes, 4):
                pulled.append(len(chunk))
                yield chunk

        yield WeightUpload("./model.weights.bin", body())

    await model_store.save(NAME, model.model_json, tracked())
    assert sum(pulled) == len(model.weight_bytes)
