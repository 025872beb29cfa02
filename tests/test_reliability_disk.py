"""Full and read-only disks (issue 8.3), through a real server on a small tmpfs.

A save that runs into ENOSPC answers 507 and leaves nothing: no version, no temp file, no
folder. A save that answered 201 is whole. Earlier models keep loading, and saves work
again once space is freed, without a restart. A read-only data dir still serves loads.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from modelshelf.backends import InsufficientStorageError, open_backend
from modelshelf.backends.ops import iter_keys, put_bytes
from modelshelf.modelstore import layout
from modelshelf.service.settings import Settings
from tests.modelfactory import http_saved
from tests.support.live_server import live_server
from tests.support.mounts import remount, tmpfs

MIB = 1 << 20
KIB = 1 << 10
STORES = ["file", "indexeddb"]


def _stores(data: Path) -> dict[str, str]:
    return {"file": f"file://{data / 'models'}", "indexeddb": f"sqlite://{data / 'idb.sqlite'}"}


def _model(size: int, seed: int) -> object:
    data = bytes([seed % 251]) * size
    return http_saved([{"name": "w", "shape": [size // 4], "dtype": "float32"}], data)


def _save(client: httpx.Client, store: str, name: str, size: int, seed: int) -> httpx.Response:
    model = _model(size, seed)
    files = {
        "model.json": ("model.json", model.model_json),
        "model.weights.bin": ("model.weights.bin", model.weight_bytes),
    }
    return client.post(f"/v1/models/{store}/{name}", files=files)


def _loads_whole(client: httpx.Client, store: str, name: str, size: int) -> bool:
    document = client.get(f"/v1/models/{store}/{name}/model.json")
    if document.status_code != 200:
        return False
    path = document.json()["weightsManifest"][0]["paths"][0]
    weights = client.get(f"/v1/models/{store}/{name}/{path}")
    return weights.status_code == 200 and len(weights.content) == size


def _versions(client: httpx.Client, store: str, name: str) -> list[str]:
    info = client.get(f"/v1/models/{store}/{name}")
    return [v["id"] for v in info.json()["versions"]] if info.status_code == 200 else []


def _debris(root: Path) -> list[str]:
    """Temp files, and version folders of the file store that no record commits."""
    found = [str(p) for p in root.rglob(".modelshelf-tmp-*")]
    models = root / "models"
    for folder in models.glob("*/~v/*"):
        name, version = folder.parent.parent.name, folder.name
        if not (models / layout.version_key(name, version)).is_file():
            found.append(str(folder))
    return found


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "disk", "24m") as disk:
        yield disk


@pytest.mark.parametrize("store", STORES)
def test_a_full_disk_answers_507_leaves_nothing_and_recovers(small_disk: Path, store: str) -> None:
    filler = small_disk / "filler"
    settings = Settings(stores=_stores(small_disk), quotas={})
    with live_server(settings) as url, httpx.Client(base_url=url, timeout=60) as client:
        assert _save(client, store, "early", 64 * KIB, 1).status_code == 201
        filler.write_bytes(b"\0" * (14 * MIB))  # leave only a few MiB for the saves
        answers: dict[int, int] = {}
        seed = 2
        # Ever smaller saves, each until the disk refuses it: some end at every margin.
        for size in (2 * MIB, 512 * KIB, 128 * KIB, 32 * KIB, 8 * KIB, 2 * KIB, 4):
            for _ in range(40):
                before = _versions(client, store, "m")
                response = _save(client, store, "m", size, seed)
                answers[response.status_code] = answers.get(response.status_code, 0) + 1
                after = _versions(client, store, "m")
                if response.status_code == 201:
                    assert response.json()["versionId"] in after
                    assert _loads_whole(client, store, "m", size)
                else:
                    assert response.status_code == 507, response.text
                    assert response.json()["code"] == "insufficient_storage"
                    assert "space" in response.json()["message"]
                    assert after == before  # nothing visible
                    assert _loads_whole(client, store, "early", 64 * KIB)
                    break
                seed += 1
        assert answers.get(507, 0) >= 3 and answers.get(201, 0) >= 1, answers
        assert set(answers) <= {201, 507}
        assert [p for p in _debris(small_disk) if store == "file"] == []
        filler.unlink()  # space again: saves work, no restart
        assert _save(client, store, "after", 1 * MIB, 99).status_code == 201
        assert _loads_whole(client, store, "after", 1 * MIB)
        static = client.get(f"/v1/models/{store}/m/model.json").json()  # never incomplete
        assert _loads_whole(client, store, "m", _size_of(static))
    assert asyncio.run(_orphans(_stores(small_disk)[store])) == []


def _size_of(document: dict[str, object]) -> int:
    weights = document["weightsManifest"][0]["weights"]  # type: ignore[index]
    return 4 * int(weights[0]["shape"][0])


async def _orphans(url: str) -> list[str]:
    """Stored weight files of versions that no record commits: debris of failed saves."""
    backend = open_backend(url)
    try:
        keys = {info.key async for info in iter_keys(backend)}
    finally:
        await backend.close()
    orphans = []
    for key in keys:
        name, marker, rest = key.partition("/~v/")
        if marker and layout.version_key(name, rest.split("/")[0]) not in keys:
            orphans.append(key)
    return orphans


def test_a_read_only_data_dir_serves_loads_and_refuses_saves(small_disk: Path) -> None:
    settings = Settings(stores=_stores(small_disk), quotas={})
    with live_server(settings) as url, httpx.Client(base_url=url, timeout=30) as client:
        for store in STORES:
            assert _save(client, store, "m", 256 * KIB, 5).status_code == 201
    remount(small_disk, "ro")
    try:
        with live_server(settings) as url, httpx.Client(base_url=url, timeout=30) as client:
            assert client.get("/readyz").status_code == 200
            for store in STORES:
                assert _loads_whole(client, store, "m", 256 * KIB)
                listing = client.get(f"/v1/models/{store}")  # its first: no index written
                assert listing.status_code == 200, listing.text
                assert list(listing.json()) == [f"{store}://m"]
                refused = _save(client, store, "m", 4 * KIB, 6)
                assert refused.status_code == 503, refused.text
                assert refused.json()["code"] == "store_read_only"
                assert "read-only" in refused.json()["message"]
                removal = client.delete(f"/v1/models/{store}/m")
                assert removal.status_code == 503
                assert _loads_whole(client, store, "m", 256 * KIB)
    finally:
        remount(small_disk, "rw")


@pytest.mark.parametrize("kind", ["file", "sqlite"])
async def test_a_put_larger_than_the_disk_is_insufficient_storage(
    tmp_path: Path, kind: str
) -> None:
    """Several write batches into a full disk: SQLite rolls back by itself (SQLITE_FULL), and a
    second ROLLBACK would hide that behind 'no transaction is active' (a 500)."""
    with tmpfs(tmp_path / "tiny", "6m") as disk:
        url = f"file://{disk / 'files'}" if kind == "file" else f"sqlite://{disk / 'db.sqlite'}"
        backend = open_backend(url)
        try:
            with pytest.raises(InsufficientStorageError, match="no space left"):
                await put_bytes(backend, "big", os.urandom(16 * MIB))
            assert [info.key async for info in iter_keys(backend)] == []
            await put_bytes(backend, "small", b"fits")  # a failed put left room behind it
        finally:
            await backend.close()
