"""The SDK's tokens and share links: against a live tokens-mode server, and MockTransport.

The live tests drive a server started with ``MODELSHELF_AUTH=tokens`` and the admin token
``ADMIN``; the MockTransport tests at the end say what the SDK sends and how it reads answers.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest

import modelshelf
from modelshelf import Client, CreatedToken, ModelArtifacts, ShareLink, TokenInfo
from tests.support.live_server import free_port

ADMIN = "ADMIN"
WEIGHTS = {"dense/kernel": np.arange(6, dtype=np.float32).reshape(2, 3)}


@pytest.fixture(scope="module")
def server(serve_module: Callable[..., str]) -> str:
    return serve_module("indexeddb", "file", auth="tokens", admin_token=ADMIN)


@pytest.fixture(scope="module")
def open_server(serve_module: Callable[..., str]) -> str:
    return serve_module("indexeddb", auth="none")


@pytest.fixture
def admin(server: str) -> Iterator[Client]:
    with Client(server, token=ADMIN) as client:
        yield client


@pytest.fixture(autouse=True)
def no_token_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODELSHELF_TOKEN", raising=False)


def artifacts(scale: float = 1.0) -> ModelArtifacts:
    weights = {name: value * scale for name, value in WEIGHTS.items()}
    return ModelArtifacts.from_weights(weights, model_topology={"class_name": "Sequential"})


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def test_create_list_revoke_round_trip(admin: Client) -> None:
    created = admin.create_token(unique("ci"), ["write:indexeddb/team/*", "read:*"], 3600)
    assert isinstance(created, CreatedToken)
    assert created.token.startswith(f"msk_{created.id}_")
    assert created.scopes == ["write:indexeddb/team/*", "read:*"]
    assert created.expiresAt is not None
    assert created.expiresAt - created.createdAt == timedelta(hours=1)
    listed = {token.id: token for token in admin.list_tokens()}
    assert type(listed[created.id]) is TokenInfo  # never the secret
    assert listed[created.id].name == created.name
    revoked = admin.revoke_token(created.id)
    assert (revoked.id, revoked.name) == (created.id, created.name)
    assert created.id not in {token.id for token in admin.list_tokens()}
    with pytest.raises(modelshelf.NotFoundError) as missing:
        admin.revoke_token(created.id)
    assert (missing.value.status, missing.value.code) == (404, "token_not_found")


def test_a_token_without_expiry_never_expires(admin: Client) -> None:
    created = admin.create_token(unique("forever"), "read:indexeddb")
    assert created.scopes == ["read:indexeddb"] and created.expiresAt is None


def test_a_bad_scope_is_an_invalid_request(admin: Client) -> None:
    with pytest.raises(modelshelf.InvalidRequestError, match="ACTION:STORE") as raised:
        admin.create_token(unique("bad"), ["everything"])
    assert raised.value.code == "invalid_scope"


def test_a_revoked_token_is_unauthorized(admin: Client, server: str) -> None:
    created = admin.create_token(unique("short-lived"), ["read:*"])
    with Client(server, token=created.token) as reader:
        assert {store.name for store in reader.list_stores()} == {"indexeddb", "file"}
        admin.revoke_token(created.id)
        with pytest.raises(modelshelf.UnauthorizedError, match="revoked") as raised:
            reader.list_stores()
    assert (raised.value.status, raised.value.code) == (401, "unauthorized")


def test_no_token_is_unauthorized(server: str) -> None:
    with Client(server) as anonymous, pytest.raises(modelshelf.UnauthorizedError, match="Bearer"):
        anonymous.list_stores()


def test_a_scoped_token_saves_inside_its_scope_only(admin: Client, server: str) -> None:
    created = admin.create_token(unique("team"), ["write:indexeddb/team/*", "read:*"])
    inside, outside = f"indexeddb://team/{unique('m')}", f"indexeddb://{unique('other')}"
    with Client(server, token=created.token) as writer:
        assert writer.save(inside, artifacts()).modelUrl == inside
        with pytest.raises(modelshelf.ForbiddenError) as raised:
            writer.save(outside, artifacts())
        with pytest.raises(modelshelf.ForbiddenError, match="admin:\\*"):
            writer.list_tokens()
    assert raised.value.code == "forbidden" and raised.value.status == 403
    assert f"write:{outside.replace('://', '/')}" in raised.value.message
    with pytest.raises(modelshelf.NotFoundError):
        admin.get_model_info(outside)


def test_share_loads_with_no_other_credentials(admin: Client) -> None:
    url = f"indexeddb://team/{unique('shared model')}+ü"
    admin.save(url, artifacts(2.0))
    link = admin.share(url, expires_in=600)
    assert isinstance(link, ShareLink)
    assert link.expiresAt is not None
    assert urlsplit(link.url).query == f"token={link.token}"

    document = httpx.get(link.url).raise_for_status().json()
    [weight_path] = document["weightsManifest"][0]["paths"]
    folder, query = link.url.rsplit("/", 1)[0], urlsplit(link.url).query
    weights = httpx.get(f"{folder}/{weight_path}?{query}").raise_for_status()
    assert weights.content == (WEIGHTS["dense/kernel"] * 2.0).tobytes()
    assert httpx.get(f"{folder}/{weight_path}").status_code == 401  # the token is what opens it

    # A client of another (unreachable) server, with a token of its own, loads from the link:
    # the link names its server and carries its token.
    with Client(f"http://127.0.0.1:{free_port()}", token="msk_not_this_one") as elsewhere:
        loaded = elsewhere.load(link.url)
        served = elsewhere.load_model_json(link.url)
    np.testing.assert_array_equal(loaded.weights()["dense/kernel"], WEIGHTS["dense/kernel"] * 2)
    assert served["weightsManifest"][0]["paths"] == [weight_path]


def test_a_share_link_reads_only_its_model(admin: Client, server: str) -> None:
    shared, other = f"indexeddb://{unique('one')}", f"indexeddb://{unique('two')}"
    admin.save(shared, artifacts())
    admin.save(other, artifacts())
    link = admin.share(shared)
    with Client(server, token=link.token) as holder:
        assert holder.load(shared).weights()["dense/kernel"].shape == (2, 3)
        with pytest.raises(modelshelf.ForbiddenError, match="share link"):
            holder.load(other)


def test_a_share_of_one_version_refuses_another(admin: Client) -> None:
    url = f"file://{unique('versions')}"
    first = admin.save(url, artifacts(1.0)).versionId
    second = admin.save(url, artifacts(3.0)).versionId
    link = admin.share(url, expires_in=600, version=first)
    assert dict(pair.split("=") for pair in urlsplit(link.url).query.split("&")) == {
        "version": first,
        "token": link.token,
    }
    answer = httpx.get(link.url).raise_for_status()
    assert answer.headers["X-Model-Version"] == first
    with Client(token="") as anyone:  # no server of its own, no token: the link is enough
        loaded = anyone.load(link.url)
        np.testing.assert_array_equal(loaded.weights()["dense/kernel"], WEIGHTS["dense/kernel"])
        with pytest.raises(modelshelf.ForbiddenError, match=f"only version {first}"):
            anyone.load(link.url, version=second)
    current = f"{link.url.partition('?')[0]}?token={link.token}"
    assert httpx.get(current).status_code == 403


def test_share_of_a_missing_version_is_not_found(admin: Client) -> None:
    url = f"indexeddb://{unique('missing')}"
    admin.save(url, artifacts())
    with pytest.raises(modelshelf.NotFoundError) as raised:
        admin.share(url, version="20000101T000000000000Z-00000000")
    assert raised.value.code == "version_not_found"


def test_tokens_on_a_server_without_them_are_a_conflict(open_server: str) -> None:
    with Client(open_server) as client:
        client.save("indexeddb://open", artifacts())
        with pytest.raises(modelshelf.ConflictError, match="MODELSHELF_AUTH=tokens") as raised:
            client.create_token("ci", ["read:*"])
        with pytest.raises(modelshelf.ConflictError):
            client.list_tokens()
        with pytest.raises(modelshelf.ConflictError):
            client.share("indexeddb://open")
    assert (raised.value.status, raised.value.code) == (409, "tokens_disabled")


def test_the_token_comes_from_the_environment(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELSHELF_TOKEN", ADMIN)
    with Client(server) as from_environment:
        assert isinstance(from_environment.list_tokens(), list)
    with Client(server, token="") as without, pytest.raises(modelshelf.UnauthorizedError):
        without.list_tokens()


async def test_the_async_client_manages_tokens(server: str) -> None:
    async with modelshelf.AsyncClient(server, token=ADMIN) as admin:
        created = await admin.create_token(unique("async"), ["read:file"], 60)
        assert created.id in {token.id for token in await admin.list_tokens()}
        assert (await admin.revoke_token(created.id)).id == created.id


def test_failed_attempts_lock_out_with_retry_after(serve_module: Callable[..., str]) -> None:
    # A server of its own: the lock-out holds every request from this address for a minute.
    url = serve_module("indexeddb", auth="tokens", admin_token=ADMIN)
    with Client(url, token="msk_0000000000000000_" + "x" * 43) as guesser:
        for _ in range(21):
            with pytest.raises(modelshelf.UnauthorizedError):
                guesser.list_stores()
        with pytest.raises(modelshelf.TooManyRequestsError, match="failed attempts") as raised:
            guesser.list_stores()
    assert raised.value.status == 429
    assert raised.value.retry_after is not None and 1 <= raised.value.retry_after <= 60


# -- the SDK's own logic, against MockTransport ---------------------------------------------

CREATED = {
    "id": "0123456789abcdef",
    "name": "ci",
    "scopes": ["read:*"],
    "createdAt": "2026-12-01T00:00:00Z",
    "expiresAt": None,
    "token": "msk_0123456789abcdef_secret",
}


def mock_client(
    handler: Callable[[httpx.Request], httpx.Response], **options: object
) -> modelshelf.Client:
    transport = httpx.MockTransport(handler)
    return modelshelf.Client("http://shelf.test", transport=transport, **options)


def test_token_requests_are_what_the_api_reads() -> None:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        if request.method == "DELETE":
            return httpx.Response(200, json={k: v for k, v in CREATED.items() if k != "token"})
        return httpx.Response(201, json=CREATED)

    with mock_client(handler, token="ADMIN") as client:
        created = client.create_token("ci", "read:*", expires_in=60)
        revoked = client.revoke_token("a/b c")
    assert created.token == CREATED["token"] and revoked.id == CREATED["id"]
    create, revoke = requests
    assert (create.method, create.url.path) == ("POST", "/v1/tokens")
    assert json.loads(create.content) == {"name": "ci", "scopes": ["read:*"], "expiresIn": 60}
    assert create.headers["Authorization"] == "Bearer ADMIN"
    assert revoke.url.raw_path == b"/v1/tokens/a%2Fb%20c"


def test_share_posts_to_the_models_share_route() -> None:
    bodies: list[tuple[bytes, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append((request.url.raw_path, json.loads(request.content)))
        link = {"url": "http://shelf.test/x", "token": "t", "expiresAt": None}
        return httpx.Response(201, json=link)

    with mock_client(handler) as client:
        client.share("indexeddb://team/a b")
        client.share("file://m", expires_in=60, version="V1")
    assert bodies == [
        (b"/v1/models/indexeddb/team/a%20b/~share", {"expiresIn": 3600}),
        (b"/v1/models/file/m/~share", {"expiresIn": 60, "version": "V1"}),
    ]


def test_a_share_link_loads_with_its_own_token_and_never_the_clients() -> None:
    seen: list[httpx.Request] = []
    document = {
        "modelTopology": {},
        "weightsManifest": [
            {"paths": ["~v/V1/a.bin"], "weights": [{"name": "w", "shape": [1], "dtype": "float32"}]}
        ],
    }

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("model.json"):
            return httpx.Response(200, json=document)
        return httpx.Response(200, content=np.float32(1.5).tobytes())

    link = "http://other.test:9000/v1/models/indexeddb/a%20b/model.json?version=V1&token=T"
    with mock_client(handler, token="MINE") as client:
        loaded = client.load(link)
    assert [str(request.url) for request in seen] == [
        link,
        "http://other.test:9000/v1/models/indexeddb/a%20b/~v/V1/a.bin?version=V1&token=T",
    ]
    assert all("Authorization" not in request.headers for request in seen)
    assert loaded.weights()["w"].tolist() == [1.5]


@pytest.mark.parametrize(
    "url",
    ["http://shelf.test/v1/models/indexeddb/m", "https://shelf.test/elsewhere/model.json"],
)
def test_an_http_url_that_is_no_share_link_is_refused(url: str) -> None:
    with mock_client(lambda request: httpx.Response(500)) as client:
        with pytest.raises(modelshelf.InvalidRequestError, match="not a share link"):
            client.load(url)
        with pytest.raises(modelshelf.InvalidRequestError, match="HTTP URL"):
            client.get_model_info(url)


def test_too_many_requests_carries_retry_after(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = {"code": "too_many_requests", "message": "retry after 17 s"}
        return httpx.Response(429, json=body, headers={"Retry-After": "17"})

    with mock_client(handler) as client:
        with pytest.raises(modelshelf.TooManyRequestsError, match="17 s") as raised:
            client.list_tokens()
        with pytest.raises(modelshelf.TooManyRequestsError) as streamed:
            client.export("indexeddb://m", tmp_path)
    assert (raised.value.status, raised.value.retry_after) == (429, 17.0)
    assert streamed.value.retry_after == 17.0  # downloads read the header too
