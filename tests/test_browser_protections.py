"""What a hostile page could do through a browser (issue 10's browser-facing protections).

Requests are shaped as Chromium sends them: an ``Origin`` header, a "simple" multipart or
text/plain POST with no preflight, preflights with and without the private-network header.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from modelshelf.service.app import create_app
from modelshelf.service.settings import Settings
from tests.modelfactory import dense_model
from tests.support.formdata import form_body
from tests.support.startup import refused_startup

ALLOWED = "https://app.example"
HOSTILE = "https://evil.example"
BOUNDARY = "----WebKitFormBoundaryq7Kp2Zb4vXy0aB1c"


def _save_body() -> bytes:
    model = dense_model()
    parts = [("model.json", model.model_json), ("model.weights.bin", model.weight_bytes)]
    return form_body(parts, BOUNDARY)


async def _client(tmp_path: Path, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        Settings(stores={"indexeddb": f"sqlite://{tmp_path / 'db.sqlite'}"}, **settings)
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
            yield c


@pytest.fixture
async def restricted(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(tmp_path, cors_origins=[ALLOWED]):
        yield client


async def _models(client: httpx.AsyncClient) -> dict[str, Any]:
    listing: dict[str, Any] = (await client.get("/v1/models/indexeddb")).json()
    return listing


@pytest.mark.parametrize(
    "content_type",
    [f"multipart/form-data; boundary={BOUNDARY}", "text/plain;charset=UTF-8"],
    ids=["multipart", "text-plain"],
)
async def test_a_simple_cross_site_save_is_refused_before_anything_is_stored(
    restricted: httpx.AsyncClient, content_type: str
) -> None:
    headers = {"Origin": HOSTILE, "Content-Type": content_type, "Sec-Fetch-Site": "cross-site"}
    response = await restricted.post(
        "/v1/models/indexeddb/m", content=_save_body(), headers=headers
    )
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden_origin"
    assert "MODELSHELF_CORS_ORIGINS" in response.json()["message"]
    assert await _models(restricted) == {}


async def test_cross_site_removals_are_refused_and_allowed_pages_still_save(
    restricted: httpx.AsyncClient,
) -> None:
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    saved = await restricted.post(
        "/v1/models/indexeddb/m", content=_save_body(), headers={**headers, "Origin": ALLOWED}
    )
    assert saved.status_code == 201, saved.text
    assert saved.headers["access-control-allow-origin"] == ALLOWED
    removal = await restricted.delete("/v1/models/indexeddb/m", headers={"Origin": HOSTILE})
    assert removal.status_code == 403
    assert list(await _models(restricted)) == ["indexeddb://m"]
    # Loads stay readable by anyone (CORS decides what a page may read); tools send no Origin.
    assert (await restricted.get("/v1/models/indexeddb/m/model.json")).status_code == 200
    no_origin = await restricted.post(
        "/v1/models/indexeddb/n", content=_save_body(), headers=headers
    )
    assert no_origin.status_code == 201


async def test_any_origin_may_save_when_every_origin_is_allowed(tmp_path: Path) -> None:
    async for client in _client(tmp_path):
        headers = {"Origin": HOSTILE, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
        response = await client.post(
            "/v1/models/indexeddb/m", content=_save_body(), headers=headers
        )
        assert response.status_code == 201


def test_credentials_for_every_origin_are_refused_at_startup() -> None:
    with pytest.raises(ValidationError, match="MODELSHELF_CORS_ORIGINS to list"):
        Settings(cors_allow_credentials=True)
    Settings(cors_allow_credentials=True, cors_origins=[ALLOWED])  # listed origins are fine


async def test_a_rebound_host_is_refused_on_a_loopback_server(tmp_path: Path) -> None:
    async for client in _client(tmp_path):
        rebound = await client.get("/v1/models/indexeddb", headers={"Host": "evil.example"})
        assert rebound.status_code == 400
        assert rebound.json()["code"] == "invalid_host"
        assert "MODELSHELF_ALLOWED_HOSTS" in rebound.json()["message"]
        saved = await client.post(
            "/v1/models/indexeddb/m",
            content=_save_body(),
            headers={
                "Host": "evil.example:8000",
                "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
            },
        )
        assert saved.status_code == 400 and await _models(client) == {}
        for host in ("localhost:8000", "127.0.0.1", "[::1]:8000"):
            answer = await client.get("/v1/models/indexeddb", headers={"Host": host})
            assert answer.status_code == 200, host


async def test_allowed_hosts_take_wildcards_and_non_loopback_defaults_to_any(
    tmp_path: Path,
) -> None:
    async for client in _client(tmp_path / "a", allowed_hosts=["*.models.example"]):
        ok = await client.get("/v1/models/indexeddb", headers={"Host": "eu.models.example"})
        assert ok.status_code == 200
        bad = await client.get("/v1/models/indexeddb", headers={"Host": "models.example.evil"})
        assert bad.status_code == 400
    assert Settings(host="0.0.0.0", auth="none").hosts_answered() == ["*"]
    assert "localhost" in Settings(host="::1").hosts_answered()


@pytest.mark.parametrize("origin", [ALLOWED, HOSTILE])
async def test_the_private_network_preflight_is_answered_for_allowed_origins(
    restricted: httpx.AsyncClient, origin: str
) -> None:
    preflight = await restricted.options(
        "/v1/models/indexeddb/m",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization",
            "Access-Control-Request-Private-Network": "true",
        },
    )
    if origin == ALLOWED:
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-private-network"] == "true"
    else:
        assert preflight.status_code == 400  # the browser sends nothing after a refused preflight
        assert "access-control-allow-origin" not in preflight.headers


def test_serve_refuses_credentials_for_every_origin_naming_the_settings() -> None:
    stderr = refused_startup(
        {"MODELSHELF_CORS_ALLOW_CREDENTIALS": "true"}, unset=("MODELSHELF_CORS_ORIGINS",)
    )
    assert "MODELSHELF_CORS_ALLOW_CREDENTIALS" in stderr
