"""Two server processes over one store race the same conditional write: exactly one wins.

Over one SQLite file and over one SeaweedFS bucket: the atomicity comes from the backend's
put modes (a SQLite transaction, S3 conditional writes), not from anything in one process.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.modelfactory import dense_model
from tests.support.formdata import post_model
from tests.support.server_process import server_process

CONTENDERS = 6


def _store_url(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "sqlite":
        return f"sqlite://{tmp_path / 'shared.sqlite'}"
    seaweed: Any = request.getfixturevalue("seaweed")
    return str(seaweed.backend_url("modelshelf-tests", f"race-{uuid.uuid4().hex[:8]}"))


def _save(url: str, seed: int, headers: dict[str, str] | None = None) -> httpx.Response:
    return post_model(f"{url}/v1/models/shared/m", dense_model(seed), headers)


def _race(calls: list[Any]) -> list[httpx.Response]:
    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(lambda call: call(), calls))


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("s3", marks=pytest.mark.s3)])
def test_conditional_writes_race_across_two_processes(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    stores = {"shared": _store_url(kind, tmp_path, request)}
    with server_process(stores, tmp_path) as one, server_process(stores, tmp_path) as other:
        servers = [one.url, other.url]
        base = _save(one.url, 0)
        assert base.status_code == 201, base.text
        base_id = base.json()["versionId"]
        # Conditional saves on the same current version, alternating between the processes.
        saves = _race(
            [
                lambda n=n: _save(servers[n % 2], n + 1, {"If-Match": f'"{base_id}"'})
                for n in range(CONTENDERS)
            ]
        )
        statuses = sorted(response.status_code for response in saves)
        assert statuses == [201] + [412] * (CONTENDERS - 1), [r.text for r in saves]
        winner = next(r.json()["versionId"] for r in saves if r.status_code == 201)
        for url in servers:
            info = httpx.get(f"{url}/v1/models/shared/m", timeout=30).json()
            assert info["currentVersion"] == winner
            assert [v["id"] for v in info["versions"]] == [base_id, winner]
        # Conditional alias moves from base to the winner, racing likewise.
        created = httpx.put(
            f"{one.url}/v1/models/shared/m/~aliases/prod", json={"versionId": base_id}, timeout=30
        )
        assert created.status_code == 200, created.text
        moves = _race(
            [
                lambda n=n: httpx.put(
                    f"{servers[n % 2]}/v1/models/shared/m/~aliases/prod",
                    json={"versionId": winner},
                    headers={"If-Match": f'"{base_id}"'},
                    timeout=30,
                )
                for n in range(CONTENDERS)
            ]
        )
        statuses = sorted(response.status_code for response in moves)
        assert statuses == [200] + [412] * (CONTENDERS - 1), [r.text for r in moves]
        for url in servers:
            info = httpx.get(f"{url}/v1/models/shared/m", timeout=30).json()
            assert info["aliases"] == {"prod": winner}
