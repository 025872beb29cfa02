"""A mixed-operation storm on shared names across stores: no 5xx, no torn load (issue 8.9).

Workers save, load, copy, move, remove and list a few shared names at random. Every answer
must be a success or a clear 4xx, and every model.json that loads must load whole: its
weights answer with exactly the bytes its manifest describes.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import random
from collections.abc import Callable

import httpx
import pytest

from tests.modelfactory import dense_model

STORM_SECONDS = float(os.environ.get("MODELSHELF_STORM_SECONDS", "6"))
WORKERS = 8
NAMES = ["a", "b", "c"]
STORES = ["file", "indexeddb", "s3"]
OK_CLIENT_ERRORS = {404, 409}


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def storm_server(serve_module: Callable[..., str]) -> str:
    return serve_module("file", "indexeddb", "s3", quotas={})


async def _one_operation(client: httpx.AsyncClient, rng: random.Random) -> tuple[str, int, str]:
    store, other = rng.choice(STORES), rng.choice(STORES)
    name, other_name = rng.choice(NAMES), rng.choice(NAMES)
    kind = rng.choice(["save", "save", "load", "load", "copy", "move", "remove", "rm1", "list"])
    if kind == "save":
        model = dense_model(seed=rng.randrange(1000))
        files = {path.lstrip("./"): data for path, data in model.files.items()}
        response = await client.post(
            f"/v1/models/{store}/{name}",
            files={"model.json": ("model.json", model.model_json)}
            | {path: (path, data) for path, data in files.items()},
        )
    elif kind == "load":
        return await _load_whole(client, store, name)
    elif kind in ("copy", "move"):
        if (store, name) == (other, other_name):
            other_name = f"{other_name}-2"
        response = await client.post(
            f"/v1/{kind}",
            json={"source": f"{store}://{name}", "destination": f"{other}://{other_name}"},
        )
    elif kind == "remove":
        response = await client.delete(f"/v1/models/{store}/{name}")
    elif kind == "rm1":
        info = await client.get(f"/v1/models/{store}/{name}")
        if info.status_code != 200:
            return kind, info.status_code, info.text
        version = rng.choice(info.json()["versions"])["id"]
        response = await client.delete(f"/v1/models/{store}/{name}", params={"version": version})
    else:
        response = await client.get(f"/v1/models/{store}")
    return kind, response.status_code, response.text


async def _load_whole(client: httpx.AsyncClient, store: str, name: str) -> tuple[str, int, str]:
    """model.json, then every weight file it names, each of exactly its manifest's bytes."""
    response = await client.get(f"/v1/models/{store}/{name}/model.json")
    if response.status_code != 200:
        return "load", response.status_code, response.text
    document = response.json()
    for group in document["weightsManifest"]:
        expected = sum(4 * _elements(spec["shape"]) for spec in group["weights"])
        got = 0
        for path in group["paths"]:
            weight = await client.get(f"/v1/models/{store}/{name}/{path}")
            if weight.status_code == 404:  # the version was removed since: gone, not torn
                return "load-gone", 404, weight.text
            if weight.status_code != 200:
                return "load-torn", weight.status_code, f"{path}: {weight.text}"
            if weight.headers["etag"].strip('"') != hashlib.sha256(weight.content).hexdigest():
                return "load-torn", 200, f"{path}: the bytes differ from their sha256 ETag"
            got += len(weight.content)
        if got != expected:
            return "load-torn", 200, f"{got} weight bytes, the manifest says {expected}"
    return "load", 200, ""


def _elements(shape: list[int]) -> int:
    count = 1
    for size in shape:
        count *= size
    return count


async def _worker(url: str, seed: int, deadline: float) -> list[tuple[str, int, str]]:
    rng = random.Random(seed)
    answers = []
    loop = asyncio.get_running_loop()
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        while loop.time() < deadline:
            answers.append(await _one_operation(client, rng))
    return answers


async def _storm(url: str) -> list[tuple[str, int, str]]:
    deadline = asyncio.get_running_loop().time() + STORM_SECONDS
    results = await asyncio.gather(*(_worker(url, seed, deadline) for seed in range(WORKERS)))
    return [answer for worker in results for answer in worker]


@pytest.mark.s3
def test_mixed_storm_has_no_5xx_and_no_torn_load(storm_server: str) -> None:
    errors = _Collect()
    logging.getLogger().addHandler(errors)
    try:
        answers = asyncio.run(_storm(storm_server))
    finally:
        logging.getLogger().removeHandler(errors)
    failures = [a for a in answers if a[1] >= 500 or a[0] == "load-torn"]
    unexpected = [a for a in answers if 400 <= a[1] < 500 and a[1] not in OK_CLIENT_ERRORS]
    logged = [logging.Formatter().format(record) for record in errors.records]
    assert len(answers) > 50, "the storm did too little to mean anything"
    assert failures == [], f"{len(failures)} of {len(answers)} failed: {failures[:5]}\n{logged[:3]}"
    assert unexpected == [], unexpected[:5]
    assert sum(1 for a in answers if a[0] == "load" and a[1] == 200) > 5
