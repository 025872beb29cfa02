"""The Python SDK against a live server on every store, sync and async."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import modelshelf
from modelshelf import AsyncClient, Client, ModelArtifacts
from modelshelf.service.settings import Settings
from tests.conftest import every_store
from tests.support.live_server import free_port, live_server

STORES = ["file", "indexeddb", "localstorage", pytest.param("s3", marks=pytest.mark.s3)]
FIXTURES = Path(__file__).parent / "fixtures"
PUBLIC_API = [
    "AsyncClient",
    "Client",
    "ConflictError",
    "CreatedToken",
    "ForbiddenError",
    "GcReport",
    "InvalidModelError",
    "InvalidRequestError",
    "ModelArtifacts",
    "ModelArtifactsInfo",
    "ModelInfo",
    "PruneResult",
    "ModelshelfError",
    "NotFoundError",
    "QuotaExceededError",
    "SaveResult",
    "ServerError",
    "ShareLink",
    "TokenInfo",
    "TooLargeError",
    "TooManyRequestsError",
    "UnauthorizedError",
    "UnavailableError",
    "VersionInfo",
    "__version__",
    "decode_weights",
    "encode_weights",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, seaweed: Any) -> Iterator[str]:
    data = tmp_path_factory.mktemp("sdk")
    stores = every_store(data, seaweed, "sdk")
    settings = Settings(stores=stores, quotas={"localstorage": 1 << 20})
    with live_server(settings) as url:
        yield url


@pytest.fixture
def client(server: str) -> Iterator[Client]:
    with Client(server) as sync_client:
        yield sync_client


def sample_weights(seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    return {
        "dense/kernel": rng.standard_normal((4, 3)).astype(np.float32),
        "dense/bias": rng.standard_normal(3).astype(np.float32),
        "step": np.array(7, dtype=np.int32),
        "mask": np.array([True, False, True]),
        "vocab": np.array(["a", "héllo", ""], dtype=object),
        "phase": np.array([1 + 2j, -3.5j], dtype=np.complex64),
    }


def artifacts(seed: int = 0) -> ModelArtifacts:
    return ModelArtifacts.from_weights(
        sample_weights(seed),
        model_topology={"class_name": "Sequential", "config": {"layers": []}},
        format="layers-model",
        generated_by="modelshelf tests",
        user_defined_metadata={"seed": seed},
    )


def assert_same_weights(got: dict[str, np.ndarray], want: dict[str, Any]) -> None:
    assert list(got) == list(want)
    for name, value in want.items():
        np.testing.assert_array_equal(got[name], value)
        assert got[name].shape == np.asarray(value).shape


def name(prefix: str) -> str:
    return f"sdk/{prefix} {uuid.uuid4().hex[:6]}+ü"


def test_public_surface_is_pinned() -> None:
    assert sorted(modelshelf.__all__) == sorted(PUBLIC_API)
    for attribute in PUBLIC_API:
        assert hasattr(modelshelf, attribute)


@pytest.mark.parametrize("store", STORES)
def test_save_load_manage_sync(client: Client, store: str) -> None:
    url = f"{store}://{name('sync')}"
    saved = client.save(url, artifacts(1))
    assert saved.modelUrl == url
    loaded = client.load(url)
    assert_same_weights(loaded.weights(), sample_weights(1))
    assert loaded.user_defined_metadata == {"seed": 1}
    second = client.save(url, artifacts(2))
    versions = client.list_versions(url)
    assert [v.id for v in versions] == [saved.versionId, second.versionId]
    assert_same_weights(client.load(url, saved.versionId).weights(), sample_weights(1))
    store_name, model_name = url.split("://")
    assert url in client.list_models(f"{store_name}://{model_name.split(' ')[0]}")
    info = client.get_model_info(url)
    assert info.currentVersion == second.versionId
    removed = client.remove_model(url, saved.versionId)
    assert len(removed.versions) == 2
    assert [v.id for v in client.list_versions(url)] == [second.versionId]
    client.remove_model(url)
    with pytest.raises(modelshelf.NotFoundError, match="no model"):
        client.load(url)


@pytest.mark.parametrize("store", STORES)
async def test_save_load_copy_move_async(server: str, store: str) -> None:
    url = f"{store}://{name('async')}"
    async with AsyncClient(server) as shelf:
        await shelf.save(url, artifacts(3))
        copy = f"indexeddb://{name('copy')}"
        copied = await shelf.copy_model(url, copy)
        assert copied.url == copy
        assert_same_weights((await shelf.load(copy)).weights(), sample_weights(3))
        moved_to = f"file://{name('moved')}"
        await shelf.move_model(copy, moved_to)
        assert_same_weights((await shelf.load(moved_to)).weights(), sample_weights(3))
        with pytest.raises(modelshelf.NotFoundError):
            await shelf.get_model_info(copy)
        with pytest.raises(modelshelf.InvalidRequestError, match="both"):
            await shelf.copy_model(url, url)


def test_streamed_save_from_files_and_iterators(client: Client, tmp_path: Path) -> None:
    specs, data = modelshelf.encode_weights({"w": np.arange(300_000, dtype=np.float32)})
    model = ModelArtifacts(model_topology={}, weight_specs=specs)
    document = model.to_model_json("./part-a.bin")
    document["weightsManifest"][0]["paths"] = ["part-a.bin", "part-b.bin"]
    (tmp_path / "part-a.bin").write_bytes(data[:700_000])

    def second_half() -> Iterator[bytes]:
        for offset in range(700_000, len(data), 65_536):
            yield data[offset : offset + 65_536]

    seen: list[tuple[int, int | None]] = []
    model_json = json.dumps(document).encode()
    result = client.save_files(
        "indexeddb://streamed",
        model_json,
        [("part-a.bin", tmp_path / "part-a.bin"), ("part-b.bin", second_half())],
        progress=lambda done, total: seen.append((done, total)),
    )
    assert result.modelArtifactsInfo.weightDataBytes == len(data)
    assert seen[-1] == (len(model_json) + len(data), None)  # an iterator's size is unknown
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    np.testing.assert_array_equal(
        client.load("indexeddb://streamed").weights()["w"], np.arange(300_000, dtype=np.float32)
    )


def test_errors_map_to_sdk_exceptions(client: Client) -> None:
    bad = artifacts()
    bad.weight_data = (bad.weight_data or b"") + b"\0"
    with pytest.raises(modelshelf.InvalidModelError, match="longer") as caught:
        client.save("indexeddb://bad", bad)
    assert caught.value.code == "weight_size_mismatch" and caught.value.status == 400
    huge = ModelArtifacts.from_weights({"w": np.zeros(400_000, dtype=np.float32)}, {})
    with pytest.raises(modelshelf.QuotaExceededError, match="quota"):
        client.save("localstorage://huge", huge)
    with pytest.raises(modelshelf.NotFoundError) as missing:
        client.get_model_info("nostore://x")
    assert missing.value.code == "unknown_store"
    with pytest.raises(modelshelf.InvalidRequestError, match="STORE://NAME"):
        client.load("not-a-url")


def test_unreachable_server_says_how_to_fix() -> None:
    with (
        Client(f"http://127.0.0.1:{free_port()}", timeout=5) as offline,
        pytest.raises(modelshelf.UnavailableError, match="MODELSHELF_URL"),
    ):
        offline.list_models("indexeddb")


def test_base_url_from_environment(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELSHELF_URL", server)
    with Client() as from_env:
        assert from_env.base_url == server
        assert {store.name for store in from_env.list_stores()} >= {"file", "indexeddb"}


@pytest.mark.parametrize("store", STORES)
def test_push_pull_export_converter_folder(client: Client, store: str, tmp_path: Path) -> None:
    source = FIXTURES / "graph_model"
    url = f"{store}://{name('graph')}"
    client.push(source, url)
    pulled = tmp_path / "pulled"
    client.pull(url, pulled)
    for file in source.iterdir():
        if file.suffix in (".json", ".bin"):
            assert (pulled / file.name).read_bytes() == file.read_bytes()
    exported = client.export(url, tmp_path / "exported", prefix="net")
    assert sorted(p.name for p in exported) == ["net.json", "net.weights.bin"]
    joined = b"".join((source / f"group1-shard{i}of2.bin").read_bytes() for i in (1, 2))
    assert (tmp_path / "exported" / "net.weights.bin").read_bytes() == joined
