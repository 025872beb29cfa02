"""Access control through real processes: startup refusals, replicas sharing one auth store,
refused uploads drained on a real socket, and tokens kept out of the access log."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelshelf.service.app import create_app
from modelshelf.service.settings import Settings
from tests.modelfactory import dense_model
from tests.support.formdata import form_body
from tests.support.live_server import free_port, live_server
from tests.support.rawhttp import address, read_response
from tests.support.server_process import server_process
from tests.support.startup import refused_startup

ADMIN = "service-admin-token"
ADMIN_VARIABLES = ("MODELSHELF_ADMIN_TOKEN", "MODELSHELF_ADMIN_TOKEN_FILE", "MODELSHELF_AUTH")
REVOCATION_DEADLINE_SECONDS = 5.0


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- modes at startup -----------------------------------------------------------------------


def test_tokens_on_a_public_address_without_an_admin_token_refuse_to_start() -> None:
    stderr = refused_startup({"MODELSHELF_HOST": "0.0.0.0"}, unset=ADMIN_VARIABLES)
    assert "MODELSHELF_ADMIN_TOKEN" in stderr
    assert "MODELSHELF_ADMIN_TOKEN_FILE" in stderr
    assert "MODELSHELF_AUTH=none" in stderr
    assert "input_value" not in stderr and "validation error" not in stderr  # no pydantic echo


def test_an_unreadable_admin_token_file_refuses_to_start(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-secret"
    stderr = refused_startup(
        {"MODELSHELF_ADMIN_TOKEN_FILE": str(missing)}, unset=("MODELSHELF_ADMIN_TOKEN",)
    )
    assert str(missing) in stderr and "cannot be read" in stderr


def test_the_admin_token_file_is_read_and_stripped(tmp_path: Path) -> None:
    secret = tmp_path / "admin"
    secret.write_text("from-a-file\n")
    settings = Settings(host="0.0.0.0", admin_token_file=secret)
    assert (settings.auth_mode(), settings.admin()) == ("tokens", "from-a-file")


def test_the_default_mode_follows_the_address_bound() -> None:
    assert Settings(host="127.0.0.1").auth_mode() == "none"
    assert Settings(host="::1").auth_mode() == "none"
    assert Settings(host="0.0.0.0", admin_token=ADMIN).auth_mode() == "tokens"
    assert Settings(host="0.0.0.0", auth="none").auth_mode() == "none"


def test_no_tokens_on_a_public_address_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="modelshelf"):
        create_app(Settings(host="0.0.0.0", auth="none", stores={"m": "memory://"}))
    assert any("MODELSHELF_AUTH=none" in record.getMessage() for record in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="modelshelf"):
        create_app(Settings(host="127.0.0.1", stores={"m": "memory://"}))
    assert not any("MODELSHELF_AUTH" in record.getMessage() for record in caplog.records)


# -- replicas over one auth store -----------------------------------------------------------


def _auth_store(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "sqlite":
        return f"sqlite://{tmp_path / 'auth.sqlite'}"
    seaweed: Any = request.getfixturevalue("seaweed")
    return str(seaweed.backend_url("modelshelf-tests", f"auth-{uuid.uuid4().hex[:8]}"))


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("s3", marks=pytest.mark.s3)])
def test_a_token_revoked_through_one_replica_is_refused_by_another_within_5_s(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    auth_store = _auth_store(kind, tmp_path, request)
    stores = {"indexeddb": f"sqlite://{tmp_path / 'models.sqlite'}"}
    settings = {"auth": "tokens", "admin_token": ADMIN, "auth_store": auth_store}
    with (
        server_process(stores, tmp_path, **settings) as one,
        server_process(stores, tmp_path, **settings) as other,
    ):
        created = httpx.post(
            f"{one.url}/v1/tokens",
            headers=_bearer(ADMIN),
            json={"name": "replicated", "scopes": ["read:*"]},
        )
        assert created.status_code == 201, created.text
        token, token_id = created.json()["token"], created.json()["id"]
        listing = f"{other.url}/v1/models/indexeddb"
        assert httpx.get(listing, headers=_bearer(token)).status_code == 200  # now cached there
        revoked = httpx.delete(f"{one.url}/v1/tokens/{token_id}", headers=_bearer(ADMIN))
        assert revoked.status_code == 200, revoked.text
        assert httpx.get(f"{one.url}/v1/stores", headers=_bearer(token)).status_code == 401
        started = time.monotonic()
        while httpx.get(listing, headers=_bearer(token)).status_code == 200:
            assert time.monotonic() - started < REVOCATION_DEADLINE_SECONDS, "still accepted"
            time.sleep(0.1)
        refused = httpx.get(listing, headers=_bearer(token))
        assert refused.status_code == 401 and refused.json()["code"] == "unauthorized"


# -- a refused upload on a real socket ------------------------------------------------------


@pytest.fixture(scope="module")
def tokens_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    data = tmp_path_factory.mktemp("auth-service")
    settings = Settings(
        stores={"indexeddb": f"sqlite://{data / 'models.sqlite'}"},
        data_dir=data,
        auth="tokens",
        admin_token=ADMIN,
    )
    with live_server(settings) as url:
        yield url


@pytest.mark.parametrize("token", [None, "read"], ids=["no-token-401", "read-only-403"])
def test_a_refused_upload_is_read_to_its_end_before_the_answer(
    tokens_server: str, token: str | None
) -> None:
    headers = ""
    if token == "read":
        created = httpx.post(
            f"{tokens_server}/v1/tokens",
            headers=_bearer(ADMIN),
            json={"name": "reader", "scopes": ["read:*"]},
        )
        headers = f"Authorization: Bearer {created.json()['token']}\r\n"
    model = dense_model(3)
    weights = model.weight_bytes + bytes(8 << 20)
    body = form_body([("model.json", model.model_json), ("model.weights.bin", weights)], "b0")
    head = (
        f"POST /v1/models/indexeddb/drained HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}"
        f"Content-Type: multipart/form-data; boundary=b0\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    half = len(body) // 2
    with socket.create_connection(address(tokens_server)) as conn:
        conn.sendall(head.encode() + body[:half])
        # Node's fetch fails with EPIPE when the answer beats the body's end: none yet.
        conn.settimeout(0.5)
        with pytest.raises(TimeoutError):
            conn.recv(1)
        conn.sendall(body[half:])
        response = read_response(conn, timeout=30)
        assert response.status == (403 if token else 401)
        assert response.json()["code"] == ("forbidden" if token else "unauthorized")
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert read_response(conn, timeout=10).status == 200
    listing = httpx.get(f"{tokens_server}/v1/models/indexeddb", headers=_bearer(ADMIN))
    assert listing.json() == {}


# -- the access log -------------------------------------------------------------------------


def test_no_token_reaches_the_access_log(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "MODELSHELF_STORES": f'{{"indexeddb": "sqlite://{tmp_path / "m.sqlite"}"}}',
        "MODELSHELF_AUTH": "tokens",
        "MODELSHELF_ADMIN_TOKEN": ADMIN,
        "MODELSHELF_DATA_DIR": str(tmp_path),
    }
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "modelshelf", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_for(url)
            created = httpx.post(
                f"{url}/v1/tokens",
                headers=_bearer(ADMIN),
                json={"name": "logged", "scopes": ["read:*"]},
            )
            token = created.json()["token"]
            for query in (f"token={token}", f"version=x&token={token}", f"token={ADMIN}"):
                httpx.get(f"{url}/v1/models/indexeddb/m/model.json?{query}")
            httpx.get(f"{url}/v1/models/indexeddb", headers=_bearer(token))
        finally:
            process.terminate()
            process.wait(timeout=20)
    text = log_path.read_text()
    assert "model.json?token=REDACTED" in text, text  # the access log is on, and redacted
    assert "version=x&token=REDACTED" in text
    assert token not in text and token[21:] not in text  # msk_ + 16-digit id + _
    assert ADMIN not in text


def _wait_for(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError("the server did not start")
