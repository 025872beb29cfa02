"""What hostile saves did to the model layer (issue 8.3-8.5, 8.8, 8.9), on every backend."""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelshelf.backends import Backend, InsufficientStorageError, UnavailableError, open_backend
from modelshelf.backends.ops import put_bytes, read_all
from modelshelf.modelstore import ModelStore, Shelf
from modelshelf.modelstore.errors import (
    InvalidModelError,
    InvalidNameError,
    ModelNotFoundError,
    QuotaExceededError,
    VersionFilesMissingError,
    VersionNotFoundError,
    WeightSizeMismatchError,
)
from tests.modelfactory import dense_model, http_saved
from tests.storehelpers import all_keys, chunks_of, save, uploads
from tests.support.spy_backend import SpyBackend

MIB = 1 << 20
QUOTA = 10 * MIB


def _model_of(size: int, seed: int = 0) -> object:
    data = bytes([seed % 256]) * size
    return http_saved([{"name": "w", "shape": [size // 4], "dtype": "float32"}], data)


# -- 8.4: refused before the first byte ----------------------------------------------------


async def test_a_name_too_long_for_the_internal_keys_is_refused_before_any_byte(
    backend: Backend,
) -> None:
    spy = SpyBackend(backend)
    store = ModelStore("localstorage", spy, quota_bytes=QUOTA)
    name = "n" * 200 + "/" + "m" * 200 + "/" + "o" * 200 + "/" + "p" * 200 + "/" + "q" * 179
    assert len(name.encode()) == 983  # fits a key, not the catalog keys built from it
    with pytest.raises(InvalidNameError, match="too long for this store"):
        await save(store, name, dense_model())
    assert spy.calls["put"] == 0
    assert await all_keys(store) == []


async def test_a_weight_path_too_long_under_the_name_is_refused_before_any_byte(
    backend: Backend,
) -> None:
    spy = SpyBackend(backend)
    store = ModelStore("indexeddb", spy)
    model = dense_model()
    long_path = "./" + "/".join(["s" * 200] * 4) + ".bin"
    model.document["weightsManifest"][0]["paths"] = [long_path]
    model.files = {long_path: model.weight_bytes}
    with pytest.raises(InvalidModelError, match="too long"):
        await save(store, "x" * 250, model)
    assert spy.calls["put"] == 0


async def test_refused_saves_leave_the_quota_untouched(backend: Backend) -> None:
    store = ModelStore("localstorage", backend, quota_bytes=QUOTA)
    model = _model_of(3 * MIB)
    bad = http_saved([{"name": "w", "shape": [4], "dtype": "float32"}], b"\0" * (3 * MIB))
    for _ in range(4):  # the bytes do not match the specs: refused after streaming
        with pytest.raises(WeightSizeMismatchError):
            await save(store, "bad", bad)
    assert await store.usage() == 0
    await save(store, "good", model)  # room is still there


# -- 8.5: the quota holds under concurrency ------------------------------------------------


@pytest.mark.parametrize("declared", [True, False], ids=["declared", "streamed"])
async def test_concurrent_saves_never_exceed_the_quota(backend: Backend, declared: bool) -> None:
    store = ModelStore("localstorage", backend, quota_bytes=QUOTA)

    async def one(seed: int) -> bool:
        model = _model_of(2 * MIB, seed)
        size = len(model.model_json) + len(model.weight_bytes) + 2048 if declared else None
        try:
            await store.save(
                f"m{seed}", model.model_json, uploads(model.files, 256 << 10), expected_bytes=size
            )
        except QuotaExceededError:
            return False
        return True

    saved = await asyncio.gather(*(one(seed) for seed in range(8)))
    assert await store.usage() <= QUOTA
    assert 2 <= sum(saved) <= 4
    listed = await store.list_models()
    assert sorted(listed.models) == sorted(f"m{seed}" for seed, ok in enumerate(saved) if ok)
    assert store._ledger is not None and store._ledger.reserved == 0  # everything released


# -- 8.3 and 8.8: errors that are not the client's -----------------------------------------


async def test_a_failed_cleanup_never_hides_why_the_save_failed(backend: Backend) -> None:
    def fail(operation: str, key: str) -> Exception | None:
        return UnavailableError("store down") if operation in ("delete", "head") else None

    store = ModelStore("indexeddb", SpyBackend(backend, fail))
    bad = http_saved([{"name": "w", "shape": [4], "dtype": "float32"}], b"\0" * 20)
    with pytest.raises(WeightSizeMismatchError):
        await save(store, "m", bad)


async def test_a_commit_whose_head_cannot_be_written_still_succeeds(backend: Backend) -> None:
    full = {"on": False}
    published = ("m/model.json", "~heads/m/~head")  # the head, and the static copy if any

    def fail(operation: str, key: str) -> Exception | None:
        if full["on"] and operation == "put" and key in published:
            return InsufficientStorageError("disk full")
        return None

    store = ModelStore("indexeddb", SpyBackend(backend, fail))
    await save(store, "m", dense_model(seed=1))
    full["on"] = True
    version = await save(store, "m", dense_model(seed=2))  # committed: no exception
    assert (await store.version("m")).id == version.id  # found by listing, not the old head
    assert not set(published) & set(await all_keys(store))  # removed, never left stale
    full["on"] = False
    again = await save(store, "m", dense_model(seed=3))
    served = json.loads(await store.published_model_json("m", None))
    assert again.id in served["weightsManifest"][0]["paths"][0]
    if backend.capabilities.plain_objects:
        assert json.loads(await read_all(backend, "m/model.json")) == served


async def test_a_committed_version_missing_a_file_says_so(model_store: ModelStore) -> None:
    version = await save(model_store, "m", dense_model())
    await model_store.backend.delete(f"m/~v/{version.id}/model.weights.bin")
    with pytest.raises(VersionFilesMissingError, match="restore"):
        await model_store.open_weight_file("m", version.id, "model.weights.bin")


async def test_a_version_removed_meanwhile_is_not_found_not_damaged(
    model_store: ModelStore,
) -> None:
    old = await save(model_store, "m", dense_model(seed=1))
    await save(model_store, "m", dense_model(seed=2))
    await model_store.remove("m", old.id)
    with pytest.raises(VersionNotFoundError):
        await model_store.open_weight_file("m", old.id, "model.weights.bin")


# -- 8.9: move racing a save ---------------------------------------------------------------


async def test_move_that_finds_no_versions_is_not_found_even_if_a_save_lands(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, destination = ModelStore("a", backend), ModelStore("b", backend)
    await save(source, "m", dense_model())
    real = source.version_ids

    async def empty_first(name: str) -> list[str]:
        monkeypatch.setattr(source, "version_ids", real)  # the save lands right after
        return []

    monkeypatch.setattr(source, "version_ids", empty_first)
    with pytest.raises(ModelNotFoundError):
        await Shelf({"a": source, "b": destination}).move("a://m", "b://m")


async def test_chunked_put_failure_leaves_no_temp_files(backend: Backend) -> None:
    async def failing() -> object:
        async for chunk in chunks_of(b"x" * 100, 10):
            yield chunk
        raise OSError("source broke")

    with pytest.raises(OSError, match="source broke"):
        await backend.put("deep/folder/key", failing())
    assert [info.key async for info in _all(backend)] == []
    await put_bytes(backend, "k", b"v")


async def _all(backend: Backend) -> object:
    page = await backend.list()
    for info in page.items:
        yield info


@settings(max_examples=25, deadline=None)
@given(
    saves=st.lists(
        st.tuples(st.integers(1, 3 * MIB // 4096), st.booleans(), st.booleans()),
        min_size=1,
        max_size=8,
    )
)
def test_quota_property_no_mix_of_saves_exceeds_it(saves: list[tuple[int, bool, bool]]) -> None:
    """Any mix of declared, streamed and failing concurrent saves stays within the quota."""

    async def run() -> None:
        store = ModelStore("localstorage", open_backend("memory://"), quota_bytes=4 * MIB)

        async def one(index: int, pages: int, declared: bool, breaks: bool) -> None:
            data = bytes([index]) * (pages * 4096)
            model = http_saved([{"name": "w", "shape": [len(data) // 4], "dtype": "float32"}], data)
            size = len(data) + len(model.model_json) + 4096 if declared else None
            files = model.files if not breaks else {"./model.weights.bin": data[:-4]}
            with contextlib.suppress(QuotaExceededError, WeightSizeMismatchError):
                await store.save(
                    f"m{index}", model.model_json, uploads(files, 64 << 10), expected_bytes=size
                )

        await asyncio.gather(*(one(i, *save) for i, save in enumerate(saves)))
        assert await store.usage() <= 4 * MIB
        assert store._ledger is not None and store._ledger.reserved == 0
        assert store._ledger.active == 0

    asyncio.run(run())


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (408, "request_timeout", "UnavailableError"),
        (503, "store_read_only", "UnavailableError"),
        (503, "unavailable", "UnavailableError"),
        (507, "insufficient_storage", "QuotaExceededError"),
        (500, "version_files_missing", "ServerError"),
    ],
)
def test_the_sdk_raises_a_clear_exception_for_each_new_code(
    status: int, code: str, kind: str
) -> None:
    from modelshelf._exceptions import error_for

    error = error_for(status, {"code": code, "message": "m"})
    assert type(error).__name__ == kind and error.code == code
