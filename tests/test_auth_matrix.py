"""Every route × every kind of token: the status, the code, and that a refusal changed nothing.

Issue 10's matrix. Each operation lists the scope sets that must pass and the near misses
that must not (the right action on the wrong model, a neighbour's prefix, the wrong store,
the other half of a copy's scopes ...). In-process over ASGI, with a real SQLite auth store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelshelf.access import EVERYTHING, TokenRegistry
from modelshelf.service.app import create_app
from modelshelf.service.settings import Settings
from tests.modelfactory import dense_model
from tests.support.formdata import form_body

ADMIN = "matrix-admin-token"
BOUNDARY = "----matrixboundary"
MODEL = "team/a"


async def _save_as_admin(http: httpx.AsyncClient, name: str) -> httpx.Response:
    options = _save_body()
    headers = {**options.pop("headers"), "Authorization": f"Bearer {ADMIN}"}
    return await http.post(f"/v1/models/indexeddb/{name}", headers=headers, **options)


def _save_body() -> dict[str, Any]:
    model = dense_model(7)
    parts = [("model.json", model.model_json), ("model.weights.bin", model.weight_bytes)]
    return {
        "content": form_body(parts, BOUNDARY),
        "headers": {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    }


@dataclass
class Shelf:
    """The app under test, seeded with two versions of indexeddb://team/a."""

    http: httpx.AsyncClient
    registry: TokenRegistry
    versions: list[str]
    victim_token_id: str

    async def token(self, *scopes: str) -> str:
        _, token = await self.registry.create("t", list(scopes), None, EVERYTHING, STORES)
        return token

    async def snapshot(self) -> dict[str, Any]:
        """What a load, a listing or the admin could see: must not move on a refusal."""
        admin = {"Authorization": f"Bearer {ADMIN}"}
        seen: dict[str, Any] = {}
        for store in STORES:
            seen[store] = (await self.http.get(f"/v1/models/{store}", headers=admin)).json()
        info = await self.http.get(f"/v1/models/indexeddb/{MODEL}", headers=admin)
        seen["info"] = info.json()
        seen["tokens"] = sorted(
            t["id"] for t in (await self.http.get("/v1/tokens", headers=admin)).json()["tokens"]
        )
        return seen


STORES = ("indexeddb", "file")


@pytest.fixture
async def shelf(tmp_path: Path) -> AsyncIterator[Shelf]:
    settings = Settings(
        stores={"indexeddb": "memory://", "file": f"file://{tmp_path / 'files'}"},
        data_dir=tmp_path,
        auth="tokens",
        admin_token=ADMIN,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            versions = []
            for _ in range(2):
                saved = await _save_as_admin(http, MODEL)
                assert saved.status_code == 201, saved.text
                versions.append(saved.json()["versionId"])
            seeded = await http.put(
                f"/v1/models/indexeddb/{MODEL}/~aliases/seeded",
                headers={"Authorization": f"Bearer {ADMIN}"},
                json={"versionId": versions[1]},
            )
            assert seeded.status_code == 200, seeded.text
            registry: TokenRegistry = app.state.tokens
            victim, _ = await registry.create("victim", ["read:*"], None, EVERYTHING, STORES)
            yield Shelf(http, registry, versions, victim.id)


@dataclass
class Operation:
    method: str
    path: str
    expected: int
    passing: list[tuple[str, ...]]
    near_misses: list[tuple[str, ...]]
    body: Callable[[Shelf], dict[str, Any]] = lambda shelf: {}
    query_token: bool = False
    changes: bool = field(default=True)

    def url(self, shelf: Shelf) -> str:
        return self.path.format(version=shelf.versions[0], victim=shelf.victim_token_id)


def _transfer(destination: str) -> Callable[[Shelf], dict[str, Any]]:
    return lambda shelf: {"json": {"source": f"indexeddb://{MODEL}", "destination": destination}}


READS = [("read:indexeddb/team/a",), ("read:*/team/*",), ("read:indexeddb",), ("admin:indexeddb",)]
READ_MISSES = [
    ("write:indexeddb/team/a", "delete:indexeddb/team/a"),
    ("read:indexeddb/team/b",),
    ("read:indexeddb/team/a/*",),
    ("read:file",),
]
ADMIN_ONLY = [("admin:*",)]
ADMIN_MISSES = [("admin:indexeddb",), ("read:*", "write:*", "delete:*")]

OPERATIONS: dict[str, Operation] = {
    "save-post": Operation(
        "POST",
        f"/v1/models/indexeddb/{MODEL}",
        201,
        [("write:indexeddb/team/a",), ("write:indexeddb/team/*",), ("write:*",), ("admin:*",)],
        [
            ("read:*", "delete:*"),
            ("write:indexeddb/team/b",),
            ("write:indexeddb/tea",),
            ("write:file",),
        ],
        body=lambda shelf: _save_body(),
    ),
    "save-put": Operation(
        "PUT",
        f"/v1/models/indexeddb/{MODEL}",
        201,
        [("write:indexeddb/te*",)],
        [("write:indexeddb/team/b*",)],
        body=lambda shelf: _save_body(),
    ),
    "model.json": Operation(
        "GET", f"/v1/models/indexeddb/{MODEL}/model.json", 200, READS, READ_MISSES, query_token=True
    ),
    "weights": Operation(
        "GET",
        f"/v1/models/indexeddb/{MODEL}/~v/{{version}}/model.weights.bin",
        200,
        READS,
        READ_MISSES,
        query_token=True,
    ),
    "export": Operation(
        "GET", f"/v1/models/indexeddb/{MODEL}/~export", 200, READS, READ_MISSES, query_token=True
    ),
    "info": Operation("GET", f"/v1/models/indexeddb/{MODEL}", 200, READS, READ_MISSES),
    "remove-version": Operation(
        "DELETE",
        f"/v1/models/indexeddb/{MODEL}?version={{version}}",
        200,
        [("delete:indexeddb/team/a",), ("delete:*/team/*",), ("admin:indexeddb",)],
        [("read:*", "write:*"), ("delete:indexeddb/team/b",), ("delete:file",)],
    ),
    "remove-model": Operation(
        "DELETE",
        f"/v1/models/indexeddb/{MODEL}",
        200,
        [("delete:indexeddb",)],
        [("write:indexeddb",), ("delete:indexeddb/team/a/*",)],
    ),
    "copy": Operation(
        "POST",
        "/v1/copy",
        200,
        [("read:indexeddb/team/a", "write:file/team/a"), ("read:*", "write:*")],
        [
            ("read:indexeddb/team/a",),
            ("write:file/team/a",),
            ("read:indexeddb/team/a", "write:file/other"),
            ("write:indexeddb/team/a", "write:file/team/a"),
        ],
        body=_transfer("file://team/a"),
    ),
    "move": Operation(
        "POST",
        "/v1/move",
        200,
        [("read:indexeddb/team/a", "write:file/team/a", "delete:indexeddb/team/a")],
        [
            ("read:indexeddb/team/a", "write:file/team/a"),
            ("read:indexeddb/team/a", "delete:indexeddb/team/a"),
            ("write:file/team/a", "delete:indexeddb/team/a"),
            ("read:indexeddb/team/a", "write:file/team/a", "delete:file/team/a"),
        ],
        body=_transfer("file://team/a"),
    ),
    "share": Operation(
        "POST",
        f"/v1/models/indexeddb/{MODEL}/~share",
        201,
        [("read:indexeddb/team/a",)],
        [("write:indexeddb/team/a",), ("read:indexeddb/team/b",)],
        body=lambda shelf: {"json": {"expiresIn": 60}},
    ),
    "set-alias": Operation(
        "PUT",
        f"/v1/models/indexeddb/{MODEL}/~aliases/prod",
        200,
        [("write:indexeddb/team/a",), ("admin:indexeddb",)],
        [("read:*", "delete:*"), ("write:indexeddb/team/b",)],
        body=lambda shelf: {"json": {"versionId": shelf.versions[0]}},
    ),
    "remove-alias": Operation(
        "DELETE",
        f"/v1/models/indexeddb/{MODEL}/~aliases/seeded",
        200,
        [("write:indexeddb/team/*",)],
        [("read:*", "delete:*"), ("write:file",)],
    ),
    "prune": Operation(
        "POST",
        f"/v1/models/indexeddb/{MODEL}/~prune",
        200,
        [("delete:indexeddb/team/a",)],
        [("write:indexeddb/team/a", "read:*")],
        body=lambda shelf: {"json": {"keep": 1}},
    ),
    "create-token": Operation(
        "POST",
        "/v1/tokens",
        201,
        ADMIN_ONLY,
        ADMIN_MISSES,
        body=lambda shelf: {"json": {"name": "x", "scopes": ["read:*"]}},
    ),
    "list-tokens": Operation("GET", "/v1/tokens", 200, ADMIN_ONLY, ADMIN_MISSES),
    "revoke-token": Operation("DELETE", "/v1/tokens/{victim}", 200, ADMIN_ONLY, ADMIN_MISSES),
    "gc": Operation(
        "POST",
        "/v1/admin/gc",
        200,
        ADMIN_ONLY,
        ADMIN_MISSES,
        body=lambda shelf: {"json": {"olderThan": 0}},
    ),
}

UNAUTHORIZED_CASES = ["none", "malformed", "basic-scheme", "unknown", "expired", "revoked"]


async def _bad_token_headers(shelf: Shelf, case: str) -> dict[str, str]:
    if case == "none":
        return {}
    if case == "malformed":
        return {"Authorization": "Bearer not-a-token"}
    if case == "basic-scheme":
        return {"Authorization": "Basic dXNlcjpwYXNz"}
    if case == "unknown":
        return {"Authorization": f"Bearer msk_0123456789abcdef_{'A' * 43}"}
    if case == "expired":
        past = TokenRegistry(
            shelf.registry.backend, None, clock=lambda: datetime.now(UTC) - timedelta(hours=2)
        )
        _, token = await past.create("old", ["admin:*"], 3600, EVERYTHING, STORES)
        return {"Authorization": f"Bearer {token}"}
    assert case == "revoked"
    record, token = await shelf.registry.create("gone", ["admin:*"], None, EVERYTHING, STORES)
    await shelf.registry.revoke(record.id)
    return {"Authorization": f"Bearer {token}"}


async def _send(shelf: Shelf, operation: Operation, headers: dict[str, str]) -> httpx.Response:
    options = operation.body(shelf)
    all_headers = {**options.pop("headers", {}), **headers}
    return await shelf.http.request(
        operation.method, operation.url(shelf), headers=all_headers, **options
    )


@pytest.mark.parametrize("case", UNAUTHORIZED_CASES)
@pytest.mark.parametrize("operation", OPERATIONS.values(), ids=OPERATIONS.keys())
async def test_no_valid_token_is_401_and_changes_nothing(
    shelf: Shelf, operation: Operation, case: str
) -> None:
    headers = await _bad_token_headers(shelf, case)
    before = await shelf.snapshot()
    response = await _send(shelf, operation, headers)
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "unauthorized"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert await shelf.snapshot() == before


def _cases(kind: str) -> list[Any]:
    return [
        pytest.param(operation, scopes, id=f"{name}-{'+'.join(scopes)}")
        for name, operation in OPERATIONS.items()
        for scopes in getattr(operation, kind)
    ]


@pytest.mark.parametrize(("operation", "scopes"), _cases("near_misses"))
async def test_a_near_miss_scope_is_403_naming_the_scope_and_changes_nothing(
    shelf: Shelf, operation: Operation, scopes: tuple[str, ...]
) -> None:
    token = await shelf.token(*scopes)
    before = await shelf.snapshot()
    response = await _send(shelf, operation, {"Authorization": f"Bearer {token}"})
    assert response.status_code == 403, response.text
    assert response.json()["code"] == "forbidden"
    assert "this needs the scope " in response.json()["message"]
    assert await shelf.snapshot() == before


@pytest.mark.parametrize(("operation", "scopes"), _cases("passing"))
async def test_each_scope_that_must_pass_passes(
    shelf: Shelf, operation: Operation, scopes: tuple[str, ...]
) -> None:
    token = await shelf.token(*scopes)
    response = await _send(shelf, operation, {"Authorization": f"Bearer {token}"})
    assert response.status_code == operation.expected, response.text


@pytest.mark.parametrize("operation", OPERATIONS.values(), ids=OPERATIONS.keys())
async def test_the_admin_token_passes_everywhere(shelf: Shelf, operation: Operation) -> None:
    response = await _send(shelf, operation, {"Authorization": f"Bearer {ADMIN}"})
    assert response.status_code == operation.expected, response.text


@pytest.mark.parametrize("operation", OPERATIONS.values(), ids=OPERATIONS.keys())
async def test_a_query_token_works_only_on_loads(shelf: Shelf, operation: Operation) -> None:
    token = await shelf.token("admin:*")
    before = await shelf.snapshot()
    url = operation.url(shelf)
    options = operation.body(shelf)
    response = await shelf.http.request(
        operation.method,
        url + ("&" if "?" in url else "?") + f"token={token}",
        **options,
    )
    if operation.query_token:
        assert response.status_code == operation.expected, response.text
        return
    assert response.status_code == 401, response.text
    assert "Authorization: Bearer" in response.json()["message"]
    assert await shelf.snapshot() == before


async def test_a_listing_shows_only_the_models_the_token_may_read(shelf: Shelf) -> None:
    for name in ("team/b", "other"):
        saved = await _save_as_admin(shelf.http, name)
        assert saved.status_code == 201
    expectations = {
        ("read:indexeddb/team/*",): ["indexeddb://team/a", "indexeddb://team/b"],
        ("read:indexeddb/other",): ["indexeddb://other"],
        ("write:indexeddb", "delete:indexeddb"): [],
        ("read:file",): [],
        ("read:*",): ["indexeddb://other", "indexeddb://team/a", "indexeddb://team/b"],
    }
    for scopes, expected in expectations.items():
        token = await shelf.token(*scopes)
        response = await shelf.http.get(
            "/v1/models/indexeddb", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200
        assert sorted(response.json()) == expected, scopes


async def test_the_store_list_shows_the_stores_a_token_concerns(shelf: Shelf) -> None:
    for scopes, expected in {
        ("read:file/x",): ["file"],
        ("write:*",): ["indexeddb", "file"],
        ("read:indexeddb", "delete:file"): ["indexeddb", "file"],
    }.items():
        token = await shelf.token(*scopes)
        response = await shelf.http.get("/v1/stores", headers={"Authorization": f"Bearer {token}"})
        assert [store["name"] for store in response.json()["stores"]] == expected


async def test_a_version_share_link_reads_that_version_and_nothing_else(shelf: Shelf) -> None:
    first, second = shelf.versions
    admin = {"Authorization": f"Bearer {ADMIN}"}
    link = await shelf.http.post(
        f"/v1/models/indexeddb/{MODEL}/~share", headers=admin, json={"version": first}
    )
    assert link.status_code == 201, link.text
    url = httpx.URL(link.json()["url"])
    assert url.params["version"] == first and url.params["token"] == link.json()["token"]
    token = link.json()["token"]
    base = f"/v1/models/indexeddb/{MODEL}"
    allowed = [
        f"{base}/model.json?version={first}&token={token}",
        f"{base}/~v/{first}/model.weights.bin?version={first}&token={token}",
        f"{base}/~export?version={first}&token={token}",
    ]
    refused = [
        f"{base}/model.json?token={token}",  # the current version is another one
        f"{base}/model.json?version={second}&token={token}",
        f"{base}/~v/{second}/model.weights.bin?token={token}",
        f"/v1/models/indexeddb?token={token}",
    ]
    for path in allowed:
        assert (await shelf.http.get(path)).status_code == 200, path
    for path in refused:
        assert (await shelf.http.get(path)).status_code in (401, 403), path
    listing = await shelf.http.get(
        "/v1/models/indexeddb", headers={"Authorization": f"Bearer {token}"}
    )
    assert listing.json() == {}


async def test_public_routes_need_no_token(shelf: Shelf) -> None:
    for path in ("/healthz", "/readyz", "/openapi.json", "/docs", "/redoc"):
        assert (await shelf.http.get(path)).status_code == 200, path


async def test_a_preflight_needs_no_token(shelf: Shelf) -> None:
    response = await shelf.http.options(
        f"/v1/models/indexeddb/{MODEL}",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert response.status_code == 200
    assert "authorization" in response.headers["access-control-allow-headers"].lower()


async def test_refusals_carry_cors_headers(shelf: Shelf) -> None:
    origin = {"Origin": "https://app.example"}
    token = await shelf.token("read:file")
    unauthorized = await shelf.http.get(f"/v1/models/indexeddb/{MODEL}/model.json", headers=origin)
    forbidden = await shelf.http.get(
        f"/v1/models/indexeddb/{MODEL}/model.json?token={token}", headers=origin
    )
    for response, status in ((unauthorized, 401), (forbidden, 403)):
        assert response.status_code == status
        assert response.headers["access-control-allow-origin"] == "*"
        assert "www-authenticate" in response.headers["access-control-expose-headers"].lower()


async def test_more_than_20_failures_a_minute_are_answered_429(shelf: Shelf) -> None:
    bad = {"Authorization": f"Bearer msk_0123456789abcdef_{'B' * 43}"}
    statuses = [(await shelf.http.get("/v1/stores", headers=bad)).status_code for _ in range(21)]
    assert statuses == [401] * 21
    locked = await shelf.http.get("/v1/stores", headers={"Authorization": f"Bearer {ADMIN}"})
    assert locked.status_code == 429
    assert locked.json()["code"] == "too_many_requests"
    assert 1 <= int(locked.headers["retry-after"]) <= 60
    assert (await shelf.http.get("/healthz")).status_code == 200  # health checks stay open


async def test_a_share_link_cannot_make_share_links(shelf: Shelf) -> None:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    share = f"/v1/models/indexeddb/{MODEL}/~share"
    link = (await shelf.http.post(share, headers=admin, json={})).json()
    before = await shelf.snapshot()
    again = await shelf.http.post(
        share, headers={"Authorization": f"Bearer {link['token']}"}, json={}
    )
    assert again.status_code == 403, again.text
    assert "share link cannot make share links" in again.json()["message"]
    assert await shelf.snapshot() == before


@pytest.mark.parametrize(
    "operation",
    [op for op in OPERATIONS.values() if op.query_token],
    ids=[name for name, op in OPERATIONS.items() if op.query_token],
)
async def test_head_of_a_load_takes_the_query_token_and_answers_what_get_would(
    shelf: Shelf, operation: Operation
) -> None:
    token = await shelf.token("read:indexeddb/team/*")
    url = f"{operation.url(shelf)}?token={token}"
    got, head = await shelf.http.get(url), await shelf.http.head(url)
    assert (got.status_code, head.status_code) == (200, 200)
    assert head.content == b""
    for header in ("content-length", "content-type", "etag", "x-model-version"):
        assert head.headers.get(header) == got.headers.get(header), header
    assert int(head.headers["content-length"]) == len(got.content)
    refused = await shelf.http.head(operation.url(shelf))
    assert refused.status_code == 401
