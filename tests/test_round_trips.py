"""Backend calls per request, counted with a spy (issue 9.6): what a save or a load costs.

Counts, not timings: the figures at 2,000 versions are bench/version_scaling.py's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from modelshelf.backends import Backend, open_backend
from modelshelf.modelstore import ModelStore
from modelshelf.modelstore.errors import ModelNotFoundError, VersionNotFoundError
from tests.modelfactory import dense_model, sharded_model
from tests.storehelpers import save
from tests.support.spy_backend import SpyBackend


@pytest.fixture
async def spied(backend: Backend) -> AsyncIterator[tuple[ModelStore, SpyBackend]]:
    spy = SpyBackend(backend)
    yield ModelStore("indexeddb", spy), spy


async def _drain(stream: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in stream])


async def test_a_save_puts_each_file_once_and_reads_nothing_back(
    spied: tuple[ModelStore, SpyBackend],
) -> None:
    store, spy = spied
    model = sharded_model()
    await save(store, "m", model)  # a first version, so the second is a plain save
    spy.reset()
    await save(store, "m", model)
    static_copy = 1 if store.static_copy else 0
    assert spy.calls["put"] == len(model.files) + 2 + static_copy
    assert spy.calls["get"] == 0  # no read-back of what it wrote
    assert spy.calls["list"] == 1  # is there a newer version than ours?
    assert spy.listed == 0


async def _load_model_json(store: ModelStore, version: str | None = None) -> tuple[str, bytes]:
    info, stream = await store.open_model_json("m", version)
    try:
        return info.id, await _drain(stream)
    finally:
        await stream.aclose()


async def test_loading_the_current_model_json_is_one_small_call_once_seen(
    spied: tuple[ModelStore, SpyBackend],
) -> None:
    store, spy = spied
    saved = await save(store, "m", dense_model())
    spy.reset()
    version_id, served = await _load_model_json(store)
    assert version_id == saved.id and f"~v/{saved.id}/".encode() in served
    assert dict(spy.calls) == {"head": 1}  # the save left the head and version in memory


async def test_a_fresh_store_reads_the_head_once_then_asks_only_whether_it_changed(
    backend: Backend,
) -> None:
    saved = await save(ModelStore("indexeddb", backend), "m", dense_model())
    spy = SpyBackend(backend)
    store = ModelStore("indexeddb", spy)  # a fresh process: nothing held
    for expected in ({"get": 1}, {"head": 1}, {"head": 1}):
        spy.reset()
        version_id, _served = await _load_model_json(store)
        assert version_id == saved.id
        assert dict(spy.calls) == expected


async def test_a_save_through_another_process_is_seen_by_the_next_load(
    backend: Backend,
) -> None:
    spy = SpyBackend(backend)
    here, elsewhere = ModelStore("indexeddb", spy), ModelStore("indexeddb", backend)
    first = await save(here, "m", dense_model())
    assert (await _load_model_json(here))[0] == first.id
    second = await save(elsewhere, "m", dense_model())
    spy.reset()
    version_id, served = await _load_model_json(here)
    assert version_id == second.id and f"~v/{second.id}/".encode() in served
    assert dict(spy.calls) == {"head": 1, "get": 1}  # the head changed: read it again
    assert (await here.version("m")).id == second.id


async def test_a_version_removed_through_another_process_is_gone_at_once(
    backend: Backend,
) -> None:
    here, elsewhere = ModelStore("indexeddb", backend), ModelStore("indexeddb", backend)
    first = await save(here, "m", dense_model())
    second = await save(here, "m", dense_model())
    assert (await _load_model_json(here, first.id))[0] == first.id  # now held in memory
    await elsewhere.remove("m", first.id)
    with pytest.raises(VersionNotFoundError):
        await _load_model_json(here, first.id)
    with pytest.raises(VersionNotFoundError):
        await here.version("m", first.id)
    await elsewhere.remove("m")
    with pytest.raises(ModelNotFoundError):
        await _load_model_json(here)
    assert second.id != first.id


async def test_a_held_version_by_id_is_one_small_call(spied: tuple[ModelStore, SpyBackend]) -> None:
    store, spy = spied
    saved = await save(store, "m", dense_model())
    spy.reset()
    assert (await _load_model_json(store, saved.id))[0] == saved.id
    assert dict(spy.calls) == {"head": 1}  # does it still exist? (removal elsewhere)
    spy.reset()
    stored = await store.weight_file("m", saved.id, "model.weights.bin")  # what a 304 needs
    assert stored.size > 0 and dict(spy.calls) == {"head": 1}  # no weight byte read


async def test_loading_a_weight_file_is_one_read_plus_one_record_read_at_most(
    backend: Backend,
) -> None:
    saved = await save(ModelStore("indexeddb", backend), "m", dense_model())
    spy = SpyBackend(backend)
    store = ModelStore("indexeddb", spy)  # a fresh process: nothing cached
    for expected_gets in (2, 1):  # the record once, then from memory: it never changes
        spy.reset()
        _stored, stream = await store.open_weight_file("m", saved.id, "model.weights.bin")
        await _drain(stream)
        await stream.aclose()
        assert dict(spy.calls) == {"get": expected_gets}


async def test_save_and_load_cost_the_same_at_300_versions_as_at_3(backend: Backend) -> None:
    spy = SpyBackend(backend)
    store = ModelStore("indexeddb", spy)
    costs = []
    for count in (3, 300):
        while len(await store.version_ids("m")) < count:
            await save(store, "m", dense_model())
        spy.reset()
        await save(store, "m", dense_model())
        _version, stream = await store.open_model_json("m")
        await _drain(stream)
        await stream.aclose()
        costs.append((dict(spy.calls), spy.listed))
    assert costs[0] == costs[1]


async def test_a_listing_page_costs_its_size_not_the_stores(
    spied: tuple[ModelStore, SpyBackend],
) -> None:
    store, spy = spied
    for index in range(30):
        for seed in range(3):
            await save(store, f"team/m{index:02d}", dense_model(seed))
    await store.list_models()  # the store's one-time index of older data
    spy.reset()
    page = await store.list_models("team/", limit=7)
    assert len(page.models) == 7 and page.next_cursor == "team/m06"
    assert spy.calls["get"] + spy.calls["head"] == 7  # one call per model on the page
    assert spy.listed <= 8
    spy.reset()
    following = await store.list_models("team/", limit=7, cursor=page.next_cursor)
    assert sorted(following.models)[0] == "team/m07"
    assert spy.listed <= 8


async def test_sqlite_reuses_its_connections(tmp_path: object) -> None:
    backend = open_backend(f"sqlite://{tmp_path}/store.sqlite")
    store = ModelStore("indexeddb", backend)
    saved = await save(store, "m", dense_model())
    before = backend.connections_opened  # type: ignore[attr-defined]
    for _ in range(50):
        _version, stream = await store.open_model_json("m")
        await _drain(stream)
        await stream.aclose()
        _stored, weights = await store.open_weight_file("m", saved.id, "model.weights.bin")
        await _drain(weights)
        await weights.aclose()
    assert backend.connections_opened - before <= 2  # type: ignore[attr-defined]
    await backend.close()


async def test_a_model_removed_and_saved_again_elsewhere_is_the_new_one(
    backend: Backend,
) -> None:
    """The held head is checked by its etag: an etag that came back after a remove (a
    reused row id, a reused inode) would serve the removed version."""
    here, elsewhere = ModelStore("indexeddb", backend), ModelStore("indexeddb", backend)
    for seed in range(4):
        saved = await save(elsewhere, "m", dense_model(seed))
        version_id, served = await _load_model_json(here)
        assert version_id == saved.id and f"~v/{saved.id}/".encode() in served
        await elsewhere.remove("m")
