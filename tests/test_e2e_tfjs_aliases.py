"""The real @tensorflow/tfjs loads ``model.json?version=prod``; a moved alias is picked up.

Apps keep loading the alias while a person promotes versions: after the alias moves, a
revalidating client gets the new version (a new ETag, not a 304), and the old version's
weight URLs, which are per-version and immutable, still load.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from urllib.parse import quote

import httpx
import pytest

from tests.support.tfjs import tfjs

pytestmark = pytest.mark.node
STORES = ["file", "indexeddb", pytest.param("s3", marks=pytest.mark.s3)]


@pytest.fixture(scope="module")
def server(serve_module: Callable[..., str]) -> str:
    return serve_module("file", "indexeddb", "s3")


@pytest.mark.parametrize("store", STORES)
def test_tfjs_loads_an_alias_and_follows_it_when_it_moves(server: str, store: str) -> None:
    name = f"alias/model {uuid.uuid4().hex[:6]}"
    base = f"{server}/v1/models/{store}/{quote(name)}"
    saves = [tfjs("save-layers", "--url", base, "--seed", str(seed)) for seed in (1, 2)]
    assert [save["status"] for save in saves] == [201, 201]
    first, second = (save["body"]["versionId"] for save in saves)
    assert saves[0]["predictions"] != saves[1]["predictions"]

    assert httpx.put(f"{base}/~aliases/prod", json={"versionId": first}).status_code == 200
    via_alias = f"{base}/model.json?version=prod"
    assert tfjs("load-layers", "--url", via_alias)["predictions"] == saves[0]["predictions"]
    before = httpx.get(via_alias)
    assert before.headers["x-model-version"] == first
    old_etag = before.headers["etag"]
    assert httpx.get(via_alias, headers={"If-None-Match": old_etag}).status_code == 304
    old_weight_urls = [
        f"{base}/{path}" for group in before.json()["weightsManifest"] for path in group["paths"]
    ]

    moved = httpx.put(
        f"{base}/~aliases/prod", json={"versionId": second}, headers={"If-Match": f'"{first}"'}
    )
    assert moved.status_code == 200, moved.text
    revalidated = httpx.get(via_alias, headers={"If-None-Match": old_etag})
    assert revalidated.status_code == 200  # not 304: the alias names another version now
    assert revalidated.headers["x-model-version"] == second
    assert revalidated.headers["etag"] != old_etag
    assert tfjs("load-layers", "--url", via_alias)["predictions"] == saves[1]["predictions"]
    for url in old_weight_urls:  # clients still holding the old model.json keep working
        response = httpx.get(url)
        assert response.status_code == 200 and "immutable" in response.headers["cache-control"]
    old_by_id = f"{base}/model.json?version={first}"
    assert tfjs("load-layers", "--url", old_by_id)["predictions"] == saves[0]["predictions"]
