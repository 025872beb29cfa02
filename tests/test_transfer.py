"""Copy and move across every pair of stores, verified, never losing the source."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from modelshelf.backends import open_backend
from modelshelf.backends.ops import put_bytes
from modelshelf.modelstore import ModelStore, Shelf
from modelshelf.modelstore.errors import (
    IntegrityError,
    ModelNotFoundError,
    SameSourceAndDestinationError,
)
from tests.conftest import BACKEND_KINDS, backend_url_for
from tests.modelfactory import ALL_MODELS, dense_model
from tests.storehelpers import all_keys, load_weights, save


@pytest.fixture(params=BACKEND_KINDS)
def destination_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
async def shelf(
    backend_kind: str, destination_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Shelf]:
    source_url = backend_url_for(backend_kind, tmp_path / "source", request)
    destination_url = backend_url_for(destination_kind, tmp_path / "destination", request)
    stores = {
        "src": ModelStore("src", open_backend(source_url)),
        "dst": ModelStore("dst", open_backend(destination_url)),
    }
    yield Shelf(stores)
    await Shelf(stores).close()


async def test_copy_then_move_across_stores(shelf: Shelf) -> None:
    source, destination = shelf.store("src"), shelf.store("dst")
    model = ALL_MODELS["sharded"]()
    await save(source, "a/model", model)
    copied = await shelf.copy("src://a/model", "dst://b/copy")
    assert await load_weights(destination, "b/copy") == model.weight_bytes
    assert await destination.original_model_json("b/copy", copied.id) == model.model_json
    assert (await source.version("a/model")).id  # the source is still there
    await save(source, "a/model", dense_model(4))  # a second version, moved too
    moved = await shelf.move("src://a/model", "dst://c/moved")
    assert await load_weights(destination, "c/moved") == dense_model(4).weight_bytes
    assert len(await destination.versions("c/moved")) == 2
    assert moved.id == (await destination.version("c/moved")).id
    with pytest.raises(ModelNotFoundError):
        await source.version("a/model")
    assert await all_keys(source) == []


@pytest.mark.parametrize("backend_kind", ["memory"])
@pytest.mark.parametrize("destination_kind", ["memory"])
async def test_transfer_errors(shelf: Shelf) -> None:
    await save(shelf.store("src"), "m", dense_model())
    with pytest.raises(SameSourceAndDestinationError):
        await shelf.copy("src://m", "src://m")
    with pytest.raises(ModelNotFoundError):
        await shelf.move("src://missing", "dst://x")
    with pytest.raises(ModelNotFoundError):
        await shelf.copy("src://missing", "dst://x")
    assert await all_keys(shelf.store("dst")) == []


@pytest.mark.parametrize("backend_kind", ["file"])
@pytest.mark.parametrize("destination_kind", ["sqlite"])
async def test_corrupted_source_is_caught_and_move_keeps_source(shelf: Shelf) -> None:
    source = shelf.store("src")
    version = await save(source, "m", dense_model())
    corrupt = dense_model(9).weight_bytes  # same size, other bytes
    await put_bytes(source.backend, f"m/~v/{version.id}/model.weights.bin", corrupt)
    with pytest.raises(IntegrityError):
        await shelf.move("src://m", "dst://m")
    assert await all_keys(shelf.store("dst")) == []
    assert (await source.version("m")).id == version.id
