"""Aliases and conditional saves over every store (memory, file, SQLite, SeaweedFS S3)."""

from __future__ import annotations

import asyncio

import pytest

from modelshelf.modelstore import ModelStore, Shelf
from modelshelf.modelstore.errors import (
    AliasNotFoundError,
    InvalidAliasError,
    PreconditionFailedError,
    VersionInUseError,
    VersionNotFoundError,
)
from tests.modelfactory import dense_model
from tests.storehelpers import all_keys, load_weights, uploads


async def _save(store: ModelStore, name: str, seed: int, **conditions: object) -> str:
    model = dense_model(seed)
    version = await store.save(name, model.model_json, uploads(model.files), **conditions)  # type: ignore[arg-type]
    return version.id


async def _versions(store: ModelStore, name: str, count: int) -> list[str]:
    return [await _save(store, name, seed) for seed in range(count)]


# -- aliases --------------------------------------------------------------------------------


async def test_an_alias_resolves_wherever_a_version_id_does(model_store: ModelStore) -> None:
    first, second = await _versions(model_store, "m", 2)
    assert await model_store.set_alias("m", "prod", first) == first
    assert (await model_store.version("m", "prod")).id == first
    info, stream = await model_store.open_model_json("m", "prod")
    await stream.aclose()
    assert info.id == first
    assert await load_weights(model_store, "m", "prod") == dense_model(0).weight_bytes
    assert (await model_store.version("m")).id == second  # the current version is unmoved
    assert await model_store.aliases.all("m") == {"prod": first}


async def test_an_alias_can_point_through_another_alias(model_store: ModelStore) -> None:
    (first,) = await _versions(model_store, "m", 1)
    await model_store.set_alias("m", "staging", first)
    assert await model_store.set_alias("m", "prod", "staging") == first


async def test_unknown_aliases_and_versions_are_not_found(model_store: ModelStore) -> None:
    await _versions(model_store, "m", 1)
    with pytest.raises(VersionNotFoundError, match="no version or alias 'prod'"):
        await model_store.version("m", "prod")
    with pytest.raises(VersionNotFoundError):
        await model_store.set_alias("m", "prod", "20200101T000000000000Z-00000000")
    with pytest.raises(AliasNotFoundError):
        await model_store.aliases.remove("m", "prod")


@pytest.mark.parametrize("alias", ["Prod", "1st", "", "a" * 64, "has space", "x/y", "~x"])
async def test_an_alias_name_outside_the_grammar_is_refused(
    model_store: ModelStore, alias: str
) -> None:
    (first,) = await _versions(model_store, "m", 1)
    with pytest.raises(InvalidAliasError):
        await model_store.set_alias("m", alias, first)


async def test_conditional_alias_moves(model_store: ModelStore) -> None:
    first, second, third = await _versions(model_store, "m", 3)
    await model_store.set_alias("m", "prod", first, if_none_match=True)
    with pytest.raises(PreconditionFailedError, match="exists already"):
        await model_store.set_alias("m", "prod", second, if_none_match=True)
    with pytest.raises(PreconditionFailedError, match=f"points at {first}, not {third}"):
        await model_store.set_alias("m", "prod", second, if_match=third)
    await model_store.set_alias("m", "prod", second, if_match=first)
    assert await model_store.aliases.all("m") == {"prod": second}
    with pytest.raises(PreconditionFailedError, match="does not exist"):
        await model_store.set_alias("m", "canary", second, if_match=first)
    with pytest.raises(PreconditionFailedError):
        await model_store.aliases.remove("m", "prod", if_match=first)
    assert await model_store.aliases.remove("m", "prod", if_match=second) == second
    assert await model_store.aliases.all("m") == {}


async def test_of_racing_conditional_moves_exactly_one_wins(model_store: ModelStore) -> None:
    versions = await _versions(model_store, "m", 4)
    await model_store.set_alias("m", "prod", versions[0])
    results = await asyncio.gather(
        *(model_store.set_alias("m", "prod", v, if_match=versions[0]) for v in versions[1:]),
        return_exceptions=True,
    )
    winners = [v for v, r in zip(versions[1:], results, strict=True) if isinstance(r, str)]
    assert len(winners) == 1, results
    assert all(isinstance(r, PreconditionFailedError) for r in results if not isinstance(r, str))
    assert await model_store.aliases.all("m") == {"prod": winners[0]}


async def test_an_aliased_version_cannot_be_removed_but_the_model_can(
    model_store: ModelStore,
) -> None:
    first, second = await _versions(model_store, "m", 2)
    await model_store.set_alias("m", "prod", first)
    await model_store.set_alias("m", "stable", first)
    with pytest.raises(VersionInUseError, match="'prod', 'stable'"):
        await model_store.remove("m", first)
    with pytest.raises(VersionInUseError):
        await model_store.remove("m", "prod")  # by alias, too
    assert [v.id for v in await model_store.versions("m")] == [first, second]
    await model_store.remove("m", second)  # not aliased
    await model_store.remove("m")
    assert await model_store.aliases.all("m") == {}
    assert await all_keys(model_store) in ([], ["~schema"])


async def test_aliases_of_one_model_are_not_another_models(model_store: ModelStore) -> None:
    (parent,) = await _versions(model_store, "team", 1)
    (child,) = await _versions(model_store, "team/sub", 1)
    await model_store.set_alias("team", "prod", parent)
    await model_store.set_alias("team/sub", "prod", child)
    assert await model_store.aliases.all("team") == {"prod": parent}
    assert await model_store.aliases.all("team/sub") == {"prod": child}


async def test_move_carries_aliases_and_copy_carries_none(model_store: ModelStore) -> None:
    shelf = Shelf({"indexeddb": model_store, "other": ModelStore("other", model_store.backend)})
    first, _second = await _versions(model_store, "m", 2)
    await model_store.set_alias("m", "prod", first)
    await shelf.copy("indexeddb://m", "indexeddb://copied")
    assert await model_store.aliases.all("copied") == {}
    await shelf.move("indexeddb://m", "indexeddb://moved")
    moved = await model_store.aliases.all("moved")
    assert list(moved) == ["prod"]
    assert await load_weights(model_store, "moved", "prod") == dense_model(0).weight_bytes
    assert await model_store.aliases.all("m") == {}


# -- conditional saves ----------------------------------------------------------------------


async def test_if_none_match_creates_only(model_store: ModelStore) -> None:
    await _save(model_store, "m", 0, if_none_match=True)
    keys = await all_keys(model_store)
    with pytest.raises(PreconditionFailedError, match="exists already"):
        await _save(model_store, "m", 1, if_none_match=True)
    assert await all_keys(model_store) == keys  # refused before a byte was stored


async def test_if_match_saves_only_on_the_current_version(model_store: ModelStore) -> None:
    first = await _save(model_store, "m", 0)
    second = await _save(model_store, "m", 1, if_match=first)
    keys = await all_keys(model_store)
    with pytest.raises(PreconditionFailedError, match=f"current version is {second}"):
        await _save(model_store, "m", 2, if_match=first)
    with pytest.raises(PreconditionFailedError, match="does not exist"):
        await _save(model_store, "absent", 2, if_match=first)
    assert await all_keys(model_store) == keys
    assert (await model_store.version("m")).id == second


async def test_of_racing_conditional_saves_exactly_one_commits(model_store: ModelStore) -> None:
    base = await _save(model_store, "m", 0)
    results = await asyncio.gather(
        *(_save(model_store, "m", seed, if_match=base) for seed in range(1, 6)),
        return_exceptions=True,
    )
    committed = [r for r in results if isinstance(r, str)]
    assert len(committed) == 1, results
    assert all(isinstance(r, PreconditionFailedError) for r in results if not isinstance(r, str))
    assert [v.id for v in await model_store.versions("m")] == [base, committed[0]]
    assert (await model_store.version("m")).id == committed[0]


async def test_of_racing_creations_exactly_one_commits(model_store: ModelStore) -> None:
    results = await asyncio.gather(
        *(_save(model_store, "new", seed, if_none_match=True) for seed in range(5)),
        return_exceptions=True,
    )
    committed = [r for r in results if isinstance(r, str)]
    assert len(committed) == 1, results
    assert [v.id for v in await model_store.versions("new")] == committed


async def test_a_removed_model_can_be_created_again_conditionally(
    model_store: ModelStore,
) -> None:
    await _save(model_store, "m", 0, if_none_match=True)
    await model_store.remove("m")
    await _save(model_store, "m", 1, if_none_match=True)
    assert len(await model_store.versions("m")) == 1


# -- retention and prune --------------------------------------------------------------------


async def test_prune_keeps_the_newest_and_every_aliased_version(model_store: ModelStore) -> None:
    versions = await _versions(model_store, "m", 5)
    await model_store.set_alias("m", "prod", versions[0])
    dry = await model_store.prune("m", 2, dry_run=True)
    assert (dry.removed, dry.kept) == (versions[1:3], [versions[0], *versions[3:]])
    assert [v.id for v in await model_store.versions("m")] == versions  # dry: nothing went
    done = await model_store.prune("m", 2)
    assert done == dry
    assert [v.id for v in await model_store.versions("m")] == [versions[0], *versions[3:]]
    assert await load_weights(model_store, "m", "prod") == dense_model(0).weight_bytes


async def test_retention_prunes_after_each_save_but_never_an_aliased_version(
    model_store: ModelStore,
) -> None:
    store = ModelStore("indexeddb", model_store.backend, keep_versions=2)
    first = await _save(store, "m", 0)
    await store.set_alias("m", "prod", first)
    saved = [await _save(store, "m", seed) for seed in range(1, 5)]
    assert [v.id for v in await store.versions("m")] == [first, *saved[-2:]]
    assert (await store.version("m")).id == saved[-1]


async def test_the_retention_setting_reaches_the_store(tmp_path: object) -> None:
    from modelshelf.service.app import open_shelf
    from modelshelf.service.settings import Settings

    settings = Settings(
        stores={"indexeddb": "memory://", "file": "memory://"}, retention={"indexeddb": 3}
    )
    shelf = open_shelf(settings)
    try:
        assert shelf.store("indexeddb").keep_versions == 3
        assert shelf.store("file").keep_versions is None
    finally:
        await shelf.close()
    with pytest.raises(ValueError, match="at least 1"):
        Settings(retention={"indexeddb": 0})
