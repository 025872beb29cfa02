"""Helpers for driving a ModelStore in tests."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from modelshelf.backends.ops import iter_keys, read_all
from modelshelf.modelstore import ModelStore, WeightUpload
from tests.modelfactory import ModelFixture


async def chunks_of(data: bytes, size: int = 7) -> AsyncIterator[bytes]:
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]


async def uploads(files: dict[str, bytes], size: int = 7) -> AsyncIterator[WeightUpload]:
    for path, data in files.items():
        yield WeightUpload(path, chunks_of(data, size))


async def save(store: ModelStore, name: str, model: ModelFixture) -> Any:
    return await store.save(name, model.model_json, uploads(model.files))


async def all_keys(store: ModelStore) -> list[str]:
    return [info.key async for info in iter_keys(store.backend)]


async def load_weights(store: ModelStore, name: str, version_id: str | None = None) -> bytes:
    """Every weight byte of a version, fetched the way TF.js does: paths from model.json."""
    version = await store.version(name, version_id)
    served = json.loads(await store.published_model_json(name, version.id))
    data = b""
    for group in served.get("weightsManifest") or []:
        for path in group["paths"]:
            key = f"{name}/{path}"
            data += await read_all(store.backend, key)
    return data
