"""Garbage collection (issue 11): what killed saves left goes, committed versions stay whole.

In-process over every backend first (the model layer), then through real server processes
killed with SIGKILL mid-save over a real directory, a real SQLite file and a real SeaweedFS
bucket, then the admin route, the SDK and the CLI.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

import modelshelf
from modelshelf import AsyncClient, Client
from modelshelf.backends import Backend, open_backend
from modelshelf.backends.ops import iter_keys, put_bytes, read_all, sweep_incomplete
from modelshelf.modelstore import ModelStore, WeightUpload, layout
from modelshelf.modelstore.errors import QuotaExceededError
from modelshelf.modelstore.sweeping import collect_garbage
from modelshelf.modelstore.version_ids import new_version_id
from modelshelf.service.settings import Settings
from tests.modelfactory import ModelFixture, dense_model, http_saved, sharded_model
from tests.storehelpers import all_keys, load_weights, save
from tests.support.formdata import form_body
from tests.support.leftovers import MIB, leftover_bytes, sqlite_staging, wait_for
from tests.support.live_server import live_server
from tests.support.rawhttp import address, read_response
from tests.support.server_process import ServerProcess, server_process
from tests.support.stores import SERVER_STORES, backend_url_for
from tests.support.tokens import bearer, issue_token

SERVER_KINDS = ["file", "indexeddb", pytest.param("s3", marks=pytest.mark.s3)]
BACKEND_ITEM = {"file": "temp_file", "indexeddb": "staging_blob", "s3": "multipart_upload"}
BOUNDARY = "----gcboundary"
A_BYTES = 4 * MIB  # stored whole before the kill: a weight file of a version never committed
B_BYTES = 16 * MIB  # cut after B_SENT: what the backend held for the put in flight
B_SENT = 10 * MIB  # past one S3 part (8 MiB) and two SQLite batches (4 MiB each)
QUOTA = 24 * MIB
PROBE_BYTES = 22 * MIB - 64 * 1024  # fits the quota only once A's bytes are not counted
ADMIN = "gc-admin-token"


def two_file_model(a: bytes, b: bytes) -> ModelFixture:
    """One weight split over two files, as the converter shards: a.bin, then b.bin."""
    entry = {"name": "w", "shape": [(len(a) + len(b)) // 4], "dtype": "float32"}
    model = http_saved([entry], b"")
    model.document["weightsManifest"][0]["paths"] = ["a.bin", "b.bin"]
    model.files = {"a.bin": a, "b.bin": b}
    return model


def old_version_id(hours: float = 2) -> str:
    """The id a save begun ``hours`` ago got (new_version_id never goes back in time)."""
    moment = datetime.now(UTC) - timedelta(hours=hours)
    return f"{moment:%Y%m%dT%H%M%S%f}Z-{secrets.token_hex(4)}"


def removed_items(report: Any) -> list[tuple[str, str, int]]:
    return sorted((item.kind, item.name, item.size) for item in report.removed)


def one_file_model(size: int) -> ModelFixture:
    return http_saved([{"name": "w", "shape": [size // 4], "dtype": "float32"}], bytes(size))


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


# -- the model layer, over every backend ---------------------------------------------------


async def test_gc_removes_files_of_versions_that_never_committed(model_store: ModelStore) -> None:
    backend = model_store.backend
    kept = [await save(model_store, "kept", dense_model(seed)) for seed in (1, 2)]
    killed, fresh = old_version_id(), new_version_id()
    planted = {
        layout.weight_file_key("victim", killed, "a.bin"): b"a" * 1000,
        layout.weight_file_key("victim", killed, "sub/b.bin"): b"b" * 2000,
        layout.weight_file_key("kept", killed, "model.weights.bin"): b"k" * 300,
        layout.original_model_json_key("legacy", killed): b"{}",  # a 0.1.0 save, no record
        layout.weight_file_key("fresh", fresh, "a.bin"): b"f" * 10,  # may still be saving
    }
    for key, data in planted.items():
        await put_bytes(backend, key, data)
    before = await all_keys(model_store)
    dry = await collect_garbage(model_store, 3600, dry_run=True)
    assert await all_keys(model_store) == before
    doomed = {key: data for key, data in planted.items() if not key.startswith("fresh/")}
    assert {(item.name, item.size) for item in dry.removed} == {
        (key, len(data)) for key, data in doomed.items()
    }
    assert {item.kind for item in dry.removed} == {"weight_file", "catalog_file"}
    assert dry.freedBytes == sum(len(data) for data in doomed.values()) and dry.error is None
    done = await collect_garbage(model_store, 3600)
    assert removed_items(done) == removed_items(dry)
    assert sorted(await all_keys(model_store)) == sorted(set(before) - set(doomed))
    for version in kept:
        assert (
            await load_weights(model_store, "kept", version.id)
            == dense_model(kept.index(version) + 1).weight_bytes
        )
    assert (await collect_garbage(model_store, 3600)).removed == []
    assert [item.name for item in (await collect_garbage(model_store, 0)).removed] == [
        layout.weight_file_key("fresh", fresh, "a.bin")
    ]


async def stored_midway(backend: Backend) -> None:
    """Wait until a.bin is stored whole and the backend holds 8 MiB of b.bin's put."""
    for _ in range(600):
        if await _holds_the_cut_save(backend):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the save's bytes did not arrive in 30 s")


async def _holds_the_cut_save(backend: Backend) -> bool:
    if not [info async for info in iter_keys(backend) if info.key.endswith("/a.bin")]:
        return False
    if not backend.capabilities.sweeps_incomplete:
        return True
    held = await sweep_incomplete(backend, 0, dry_run=True)  # bypasses the model layer's guard
    return sum(item.size for item in held) >= 8 * MIB


async def test_gc_keeps_the_version_a_head_still_names(model_store: ModelStore) -> None:
    """A remove killed between un-committing a version and re-pointing the head."""
    version = await save(model_store, "m", dense_model(3))
    await model_store.backend.delete(layout.version_key("m", version.id))
    assert (await collect_garbage(model_store, 0)).removed == []
    key = layout.weight_file_key("m", version.id, "model.weights.bin")
    assert await read_all(model_store.backend, key) == dense_model(3).weight_bytes
    assert (await model_store.version("m")).id == version.id  # the head still serves it


async def test_a_save_in_flight_keeps_its_bytes_even_at_age_zero(model_store: ModelStore) -> None:
    """This process knows its saves: gc skips their versions and the uploads they run."""
    a, b = random.Random(1).randbytes(A_BYTES), random.Random(2).randbytes(B_BYTES)
    model = two_file_model(a, b)
    sent, release = asyncio.Event(), asyncio.Event()

    async def chunks_of_b() -> AsyncIterator[bytes]:
        for offset in range(0, B_SENT, MIB):
            yield b[offset : offset + MIB]
        sent.set()
        await release.wait()
        for offset in range(B_SENT, B_BYTES, MIB):
            yield b[offset : offset + MIB]

    async def uploads() -> AsyncIterator[WeightUpload]:
        yield WeightUpload("a.bin", _once(a))
        yield WeightUpload("b.bin", chunks_of_b())

    saving = asyncio.create_task(model_store.save("slow", model.model_json, uploads()))
    try:
        await sent.wait()
        await stored_midway(model_store.backend)
        for age in (3600, 0):
            assert (await collect_garbage(model_store, age)).removed == []
    finally:
        release.set()
        await asyncio.wait([saving])  # ended before the fixture closes the backend
    version = saving.result()
    assert await load_weights(model_store, "slow", version.id) == a + b
    assert (await collect_garbage(model_store, 0)).removed == []


async def test_the_quota_stops_counting_freed_bytes_while_saves_run(backend_url: str) -> None:
    """With a save in flight the ledger only tracks usage: gc must take the bytes off."""
    store = ModelStore("q", open_backend(backend_url), quota_bytes=100_000)
    try:
        dead = layout.weight_file_key("dead", old_version_id(), "w.bin")
        await put_bytes(store.backend, dead, bytes(60_000))
        release = asyncio.Event()

        async def held() -> AsyncIterator[bytes]:
            await release.wait()
            yield bytes(8)

        async def held_upload() -> AsyncIterator[WeightUpload]:
            yield WeightUpload("model.weights.bin", held())

        small, big = one_file_model(8), one_file_model(40_000)
        first = asyncio.create_task(
            store.save("first", small.model_json, held_upload(), expected_bytes=10_000)
        )
        try:
            await asyncio.sleep(0.2)  # reserved: the ledger counted the 60 000 dead bytes
            with pytest.raises(QuotaExceededError):
                await save(store, "second", big)
            removed = (await collect_garbage(store, 3600)).removed
            assert [item.size for item in removed] == [60_000]
            await save(store, "second", big)
        finally:
            release.set()
            await asyncio.wait([first])
        first.result()
    finally:
        await store.close()


@pytest.mark.parametrize("kind", ["file", "sqlite"])
async def test_stores_of_release_0_1_0_lose_nothing(kind: str, tmp_path: Path) -> None:
    fixture = Path(__file__).parent / "fixtures" / "legacy_v0_1"
    if kind == "file":
        shutil.copytree(fixture / "file", tmp_path / "file")
        url = f"file://{tmp_path / 'file'}"
    else:
        shutil.copy(fixture / "store.sqlite", tmp_path / "store.sqlite")
        url = f"sqlite://{tmp_path / 'store.sqlite'}"
    store = ModelStore(kind, open_backend(url))
    try:
        before = {
            info.key: await read_all(store.backend, info.key)
            for info in [info async for info in iter_keys(store.backend)]
        }
        assert (await collect_garbage(store, 0)).removed == []
        after = {
            info.key: await read_all(store.backend, info.key)
            for info in [info async for info in iter_keys(store.backend)]
        }
        assert after == before
    finally:
        await store.close()


# -- kill -9 mid-save, on real stores ------------------------------------------------------


class CutSave:
    """A save sent over a raw socket up to B_SENT bytes of b.bin, the rest held back."""

    def __init__(self, url: str, store: str, name: str) -> None:
        self.a = random.Random(f"{name}-a").randbytes(A_BYTES)
        self.b = random.Random(f"{name}-b").randbytes(B_BYTES)
        model = two_file_model(self.a, self.b)
        parts = [("model.json", model.model_json), ("a.bin", self.a), ("b.bin", self.b)]
        self.body = form_body(parts, BOUNDARY)
        self.cut = self.body.index(self.b[:64]) + B_SENT
        self.conn = socket.create_connection(address(url), timeout=60)
        host, port = address(url)
        head = (
            f"POST /v1/models/{store}/{name} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
            f"Content-Length: {len(self.body)}\r\n\r\n"
        )
        self.conn.sendall(head.encode() + self.body[: self.cut])

    def finish(self) -> Any:
        self.conn.sendall(self.body[self.cut :])
        response = read_response(self.conn, 60)
        self.conn.close()
        assert response.status == 201, response.body
        return response.json()

    def __enter__(self) -> CutSave:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.conn.close()


def http_save(url: str, store: str, name: str, model: ModelFixture) -> str:
    parts = [("model.json", model.model_json), *model.files.items()]
    response = httpx.post(
        f"{url}/v1/models/{store}/{name}",
        content=form_body(parts, BOUNDARY),
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        timeout=120,
    )
    assert response.status_code == 201, response.text
    version: str = response.json()["versionId"]
    return version


def probe_save(url: str, store: str) -> httpx.Response:
    """A save that fits the quota only if the orphaned bytes are not counted."""
    model = one_file_model(PROBE_BYTES)
    return httpx.post(
        f"{url}/v1/models/{store}/probe",
        content=form_body([("model.json", model.model_json), *model.files.items()], BOUNDARY),
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        timeout=120,
    )


def http_load(url: str, store: str, name: str, version: str) -> bytes:
    base = f"{url}/v1/models/{store}/{name}"
    served = httpx.get(f"{base}/model.json", params={"version": version}, timeout=30).json()
    paths = [path for group in served["weightsManifest"] for path in group["paths"]]
    return b"".join(httpx.get(f"{base}/{path}", timeout=60).content for path in paths)


def http_gc(url: str, **body: Any) -> dict[str, Any]:
    response = httpx.post(f"{url}/v1/admin/gc", json=body, timeout=120)
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


def store_state(url: str, prefix: str) -> tuple[dict[str, int], int]:
    """The keys under ``prefix`` with their sizes, and the usage the quota lists."""

    async def measure() -> tuple[dict[str, int], int]:
        store = ModelStore("probe", open_backend(url))
        try:
            keys = {info.key: info.size async for info in iter_keys(store.backend, prefix)}
            return keys, await store.usage()
        finally:
            await store.close()

    return asyncio.run(measure())


def kill(server: ServerProcess) -> None:
    os.kill(server.pid, signal.SIGKILL)
    server.process.wait(timeout=30)


@pytest.fixture(params=SERVER_KINDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str, Any]:
    """(store name, backend URL, SeaweedFS or None) of a fresh store: file, sqlite, s3."""
    store: str = request.param
    seaweed = request.getfixturevalue("seaweed") if store == "s3" else None
    return store, backend_url_for(SERVER_STORES[store], tmp_path / "store", request), seaweed


def test_gc_after_kill_9_mid_save(store_url: tuple[str, str, Any], tmp_path: Path) -> None:
    store, url, seaweed = store_url
    settings = {"quotas": {store: QUOTA}, "body_idle_timeout_seconds": 120}
    committed: dict[tuple[str, str], bytes] = {}
    with server_process({store: url}, tmp_path, **settings) as server:
        saved = [("kept", dense_model(1)), ("kept", dense_model(2)), ("shards", sharded_model())]
        for name, model in saved:
            committed[(name, http_save(server.url, store, name, model))] = model.weight_bytes
        with CutSave(server.url, store, "victim"):
            wait_for(lambda: leftover_bytes(url, seaweed), 8 * MIB)
            kill(server)
    orphans, used = store_state(url, "victim/")
    ((orphan_key, orphan_size),) = orphans.items()  # a.bin, stored whole
    assert re.fullmatch(r"victim/~v/\d{8}T\d{12}Z-[0-9a-f]{8}/a\.bin", orphan_key)
    assert orphan_size == A_BYTES
    held = leftover_bytes(url, seaweed)
    assert held >= 8 * MIB

    with server_process({store: url}, tmp_path, **settings) as server:
        refused = probe_save(server.url, store)
        assert (refused.status_code, refused.json()["code"]) == (507, "quota_exceeded")
        dry = http_gc(server.url, dryRun=True, olderThan=0)
        assert store_state(url, "victim/") == (orphans, used)  # a dry run removes nothing
        assert leftover_bytes(url, seaweed) == held
        done = http_gc(server.url, olderThan=0)
        assert done["stores"][0]["removed"] == dry["stores"][0]["removed"]
        removed = {item["kind"]: item for item in done["stores"][0]["removed"]}
        assert set(removed) == {"weight_file", BACKEND_ITEM[store]}, removed
        assert (removed["weight_file"]["name"], removed["weight_file"]["size"]) == (
            orphan_key,
            A_BYTES,
        )
        assert removed[BACKEND_ITEM[store]]["size"] == held
        assert done["freedBytes"] == A_BYTES + held and not done["dryRun"]
        assert leftover_bytes(url, seaweed) == 0
        if store == "indexeddb":
            assert sqlite_staging(url) == (0, 0)
        assert store_state(url, "victim/") == ({}, used - A_BYTES)
        assert http_gc(server.url, olderThan=0)["stores"][0]["removed"] == []
        assert probe_save(server.url, store).status_code == 201  # the quota counts A no more
        for (name, version), data in committed.items():
            assert http_load(server.url, store, name, version) == data


def test_gc_never_touches_a_save_in_progress(
    store_url: tuple[str, str, Any], tmp_path: Path
) -> None:
    store, url, seaweed = store_url
    with server_process({store: url}, tmp_path, body_idle_timeout_seconds=120) as server:
        with CutSave(server.url, store, "slow") as cut:
            held = wait_for(lambda: leftover_bytes(url, seaweed), 8 * MIB)
            stored = store_state(url, "slow/")
            assert len(stored[0]) == 1  # a.bin, whole
            assert http_gc(server.url)["stores"][0]["removed"] == []  # the default: 1 h
            assert http_gc(server.url, olderThan=0)["stores"][0]["removed"] == []  # its own save
            assert (store_state(url, "slow/"), leftover_bytes(url, seaweed)) == (stored, held)
            version = cut.finish()["versionId"]
        assert http_load(server.url, store, "slow", version) == cut.a + cut.b
        assert http_gc(server.url, olderThan=0)["stores"][0]["removed"] == []


# -- the route with tokens, the SDK and the CLI ---------------------------------------------


def test_gc_needs_admin_on_every_store(tmp_path: Path) -> None:
    settings = Settings(
        stores={"indexeddb": f"sqlite://{tmp_path / 'store.sqlite'}"},
        data_dir=tmp_path,
        auth="tokens",
        admin_token=ADMIN,
    )
    with live_server(settings) as url:
        assert httpx.post(f"{url}/v1/admin/gc", json={}).status_code == 401
        for scopes in (["write:*", "delete:*"], ["admin:indexeddb"]):
            token = issue_token(url, ADMIN, "not-admin", scopes)
            refused = httpx.post(f"{url}/v1/admin/gc", json={}, headers=bearer(token))
            assert refused.status_code == 403, refused.text
            assert refused.json()["code"] == "forbidden"
            assert "admin:*" in refused.json()["message"]
        admin = issue_token(url, ADMIN, "admin", ["admin:*"])
        for token in (admin, ADMIN):
            passed = httpx.post(f"{url}/v1/admin/gc", json={"dryRun": True}, headers=bearer(token))
            assert passed.status_code == 200, passed.text
        with Client(url, token=admin) as client:
            assert client.gc(store="indexeddb").stores[0].store == "indexeddb"
        with Client(url, token="") as client, pytest.raises(modelshelf.UnauthorizedError):
            client.gc()


@pytest.fixture(scope="module")
def shelf_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A server over a directory store the tests may plant garbage in, and its folder."""
    data = tmp_path_factory.mktemp("gc")
    stores = {"file": f"file://{data / 'files'}", "indexeddb": f"sqlite://{data / 'db.sqlite'}"}
    with live_server(Settings(stores=stores, data_dir=data)) as url:
        yield url, data / "files"


def plant_orphan(folder: Path, name: str, size: int) -> str:
    """A weight file of a version begun two hours ago that never committed."""
    key = layout.weight_file_key(name, old_version_id(), "model.weights.bin")
    path = folder.joinpath(*key.split("/"))  # a file store keeps each value as a plain file
    path.parent.mkdir(parents=True)
    path.write_bytes(bytes(size))
    return key


async def test_the_sdk_reports_and_removes(shelf_server: tuple[str, Path]) -> None:
    url, folder = shelf_server
    key = plant_orphan(folder, "sdk-victim", 1234)
    async with AsyncClient(url) as shelf:
        dry = await shelf.gc(dry_run=True)
        assert isinstance(dry, modelshelf.GcReport) and dry.dryRun and dry.olderThan == 3600
        assert [store.store for store in dry.stores] == ["file", "indexeddb"]
        assert [(i.kind, i.name, i.size) for i in dry.stores[0].removed] == [
            ("weight_file", key, 1234)
        ]
        assert (await shelf.gc(store="file", older_than=3 * 3600)).freedBytes == 0  # not old enough
        done = await shelf.gc(store="file")
        assert [store.store for store in done.stores] == ["file"] and done.freedBytes == 1234
        assert (await shelf.gc()).freedBytes == 0
        with pytest.raises(modelshelf.NotFoundError, match="no store 'nope'"):
            await shelf.gc(store="nope")
    with Client(url) as client:
        assert client.gc(dry_run=True, older_than=0).freedBytes == 0


def run_cli(url: str, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "modelshelf", "gc", *args, "--server", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == expect, (result.stdout, result.stderr)
    return result


def test_the_cli_prints_what_went_and_the_bytes_freed(shelf_server: tuple[str, Path]) -> None:
    url, folder = shelf_server
    key = plant_orphan(folder, "cli-victim", 3 * MIB)
    dry = run_cli(url, "--dry-run", "--older-than", "30m")
    assert dry.stdout == f"file\tweight_file\t{key}\t3.0 MiB\n"
    assert "dry run: 1 items would go, freeing 3.0 MiB; nothing was removed" in dry.stderr
    assert (
        json.loads(run_cli(url, "--dry-run", "--json", "--store", "file").stdout)["freedBytes"]
        == 3 * MIB
    )
    assert "nothing to remove" in run_cli(url, "--older-than", "1d").stdout
    done = run_cli(url, "--older-than", "0", "--store", "file")
    assert key in done.stdout and "removed 1 items, freed 3.0 MiB" in done.stderr
    assert json.loads(run_cli(url, "--json").stdout)["freedBytes"] == 0
    assert "not a duration" in run_cli(url, "--older-than", "soon", expect=2).stderr
    assert "no store" in run_cli(url, "--store", "nope", expect=3).stderr
