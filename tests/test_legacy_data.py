"""Stores written by release 0.1.0 (tests/fixtures/legacy_v0_1) load with today's code."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from modelshelf.backends import open_backend
from modelshelf.backends.ops import put_bytes, read_all
from modelshelf.modelstore import ModelStore
from tests.modelfactory import dense_model
from tests.storehelpers import save

FIXTURE = Path(__file__).parent / "fixtures" / "legacy_v0_1"
EXPECTED: dict[str, dict[str, list[dict[str, Any]]]] = json.loads(
    (FIXTURE / "expected.json").read_text()
)


@pytest.fixture(params=["file", "sqlite", "memory"])
async def legacy_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ModelStore]:
    kind = request.param
    if kind == "file":
        shutil.copytree(FIXTURE / "file", tmp_path / "file")
        backend = open_backend(f"file://{tmp_path / 'file'}")
    elif kind == "sqlite":
        shutil.copy(FIXTURE / "store.sqlite", tmp_path / "store.sqlite")
        backend = open_backend(f"sqlite://{tmp_path / 'store.sqlite'}")
    else:
        backend = open_backend("memory://")
        for key, value in json.loads((FIXTURE / "memory.json").read_text()).items():
            await put_bytes(backend, key, base64.b64decode(value))
    store = ModelStore(kind, backend)
    store.expected = EXPECTED[kind]  # type: ignore[attr-defined]
    yield store
    await store.close()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_every_version_loads_byte_exact(legacy_store: ModelStore) -> None:
    for name, versions in legacy_store.expected.items():  # type: ignore[attr-defined]
        assert await legacy_store.version_ids(name) == [v["id"] for v in versions]
        assert (await legacy_store.version(name)).id == versions[-1]["id"]
        for expected in versions:
            original = await legacy_store.original_model_json(name, expected["id"])
            assert _sha(original) == expected["modelJsonSha256"]
            served = json.loads(await legacy_store.published_model_json(name, expected["id"]))
            paths = [p for group in served["weightsManifest"] for p in group["paths"]]
            assert all(p.startswith(f"~v/{expected['id']}/") for p in paths)
            for path, sha in expected["files"].items():
                stored, stream = await legacy_store.open_weight_file(name, expected["id"], path)
                data = b"".join([chunk async for chunk in stream])
                await stream.aclose()
                assert _sha(data) == sha == stored.sha256


async def test_the_current_version_loads_in_one_read_after_listing(
    legacy_store: ModelStore,
) -> None:
    page = await legacy_store.list_models()  # gives release-0.1.0 models their heads
    assert sorted(page.models) == sorted(legacy_store.expected)  # type: ignore[attr-defined]
    for name, versions in legacy_store.expected.items():  # type: ignore[attr-defined]
        assert page.models[name].id == versions[-1]["id"]
        head = await read_all(legacy_store.backend, f"~heads/{name}/~head")
        assert versions[-1]["id"].encode() in head.split(b"\n", 1)[0]
    assert await read_all(legacy_store.backend, "~schema") == b"2\n"


async def test_new_versions_and_removals_mix_with_old_ones(legacy_store: ModelStore) -> None:
    old = legacy_store.expected["dense"]  # type: ignore[attr-defined]
    new = await save(legacy_store, "dense", dense_model(seed=9))
    assert await legacy_store.version_ids("dense") == [old[0]["id"], old[1]["id"], new.id]
    assert (await legacy_store.version("dense")).id == new.id
    await legacy_store.remove("dense", new.id)
    assert (await legacy_store.version("dense")).id == old[1]["id"]
    await legacy_store.remove("dense", old[1]["id"])
    assert await legacy_store.version_ids("dense") == [old[0]["id"]]
    served = json.loads(await legacy_store.published_model_json("dense", None))
    assert served["weightsManifest"][0]["paths"] == [f"~v/{old[0]['id']}/model.weights.bin"]
    await legacy_store.remove("dense")
    assert await legacy_store.version_ids("dense") == []


async def test_an_older_sqlite_database_stops_handing_out_blob_ids_again(
    tmp_path: Path,
) -> None:
    """Etags are blob ids: after the rewrite on opening, a value written anew after a delete
    never carries the etag of the one deleted (release 0.1.0 had no AUTOINCREMENT)."""
    path = tmp_path / "store.sqlite"
    shutil.copy(FIXTURE / "store.sqlite", path)
    with closing(sqlite3.connect(path)) as raw:
        before = raw.execute("SELECT id, committed, created FROM blobs ORDER BY id").fetchall()
        (schema,) = raw.execute("SELECT sql FROM sqlite_master WHERE name = 'blobs'").fetchone()
    assert "AUTOINCREMENT" not in schema.upper()
    backend = open_backend(f"sqlite://{path}")
    try:
        first = await put_bytes(backend, "zz/last", b"one")  # the highest id, then deleted
        await backend.delete("zz/last")
        second = await put_bytes(backend, "zz/last", b"two")
        assert first.etag != second.etag
    finally:
        await backend.close()
    with closing(sqlite3.connect(path)) as raw:
        after = raw.execute("SELECT id, committed, created FROM blobs ORDER BY id").fetchall()
        (schema,) = raw.execute("SELECT sql FROM sqlite_master WHERE name = 'blobs'").fetchone()
    assert "AUTOINCREMENT" in schema.upper()
    assert after[: len(before)] == before  # every row kept as it was
