"""``modelshelf serve --workers 2``: two processes over every store keep the store's invariants,
and a worker that dies is replaced while the other keeps answering (issue 12, item 1)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.modelfactory import dense_model
from tests.support.formdata import post_model
from tests.support.live_server import free_port

STORES = ["file", "indexeddb", "localstorage", "s3"]
SAVES = 8


def _workers(parent: int) -> set[int]:
    """The spawned worker processes of uvicorn's supervisor."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("PPid"))
        if ppid == parent and b"spawn_main" in cmdline:
            found.add(int(entry.name))
    return found


def _wait_for(condition: Any, what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, seaweed: Any) -> Iterator[tuple[str, int]]:
    data = tmp_path_factory.mktemp("workers")
    seaweed.create_bucket("modelshelf-workers")
    port = free_port()
    env = {
        **os.environ,
        "MODELSHELF_DATA_DIR": str(data),
        "MODELSHELF_S3_URL": seaweed.backend_url("modelshelf-workers", "w"),
        "MODELSHELF_QUOTAS": "{}",
    }
    log = (data / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "modelshelf", "serve", "--workers", "2", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(lambda: len(_workers(process.pid)) == 2 and _healthy(url), "two workers")
        yield url, process.pid
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _save(url: str, store: str, name: str, seed: int) -> httpx.Response:
    return post_model(f"{url}/v1/models/{store}/{name}", dense_model(seed))


@pytest.mark.parametrize("store", STORES)
def test_two_workers_keep_every_version_and_end_on_the_newest(
    server: tuple[str, int], store: str
) -> None:
    url, _parent = server
    name = f"workers/{uuid.uuid4().hex[:8]}"
    with ThreadPoolExecutor(SAVES) as pool:
        saves = list(pool.map(lambda seed: _save(url, store, name, seed), range(SAVES)))
    assert [r.status_code for r in saves] == [201] * SAVES, [r.text for r in saves]
    saved = {r.json()["versionId"]: seed for seed, r in enumerate(saves)}
    for _ in range(4):  # several requests: both workers answer some of them
        info = httpx.get(f"{url}/v1/models/{store}/{name}", timeout=30).json()
        assert sorted(v["id"] for v in info["versions"]) == sorted(saved)
        assert info["currentVersion"] == max(saved)  # the newest id, whichever worker saved it
    for version_id, seed in saved.items():
        served = httpx.get(
            f"{url}/v1/models/{store}/{name}/model.json", params={"version": version_id}, timeout=30
        ).json()
        paths = [p for group in served["weightsManifest"] for p in group["paths"]]
        data = b"".join(
            httpx.get(f"{url}/v1/models/{store}/{name}/{p}", timeout=30).content for p in paths
        )
        expected = dense_model(seed).weight_bytes
        assert hashlib.sha256(data).digest() == hashlib.sha256(expected).digest()


def test_a_worker_that_dies_is_replaced_and_the_other_keeps_answering(
    server: tuple[str, int],
) -> None:
    url, parent = server
    before = _workers(parent)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    assert _healthy(url)  # the other worker answers meanwhile
    after = _wait_for(
        lambda: (found := _workers(parent)) and len(found) == 2 and victim not in found and found,
        "a replacement worker",
        timeout=60,
    )
    assert victim not in after and len(after - before) == 1
    _wait_for(lambda: _healthy(url), "the server to answer")
    assert _save(url, "indexeddb", f"after-kill-{uuid.uuid4().hex[:6]}", 1).status_code == 201
