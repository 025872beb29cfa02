"""Backend calls per request, counted with a spy (issue 9.6): what a save or a load costs.

Counts, not timings: the figures at 2,000 versions are bench/version_scaling.py's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from modelshelf.backends import Backend, open_backend
from modelshelf.modelstore import ModelStore
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


async def test_loading_the_current_model_json_is_one_read(
    spied: tuple[ModelStore, SpyBackend],
) -> None:
    store, spy = spied
    saved = await save(store, "m", dense_model())
    spy.reset()
    version, stream = await store.open_model_json("m")
    served = await _drain(stream)
    await stream.aclose()
    assert version.id == saved.id and f"~v/{saved.id}/".encode() in served
    assert dict(spy.calls) == {"get": 1}


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
    assert spy.calls["get"] == 7
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
