"""Through a real socket: aborted uploads, the CLI, settings files, readiness."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from modelshelf.service.settings import Settings, load_settings
from tests.modelfactory import dense_model, http_saved
from tests.support.live_server import free_port, live_server

BOUNDARY = "XyZ"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    stores = {"indexeddb": f"sqlite://{tmp_path / 'db.sqlite'}", "file": f"file://{tmp_path / 'f'}"}
    with live_server(Settings(stores=stores)) as url:
        yield url


def _head_and_partial_body(weight_bytes: int) -> tuple[bytes, bytes]:
    model = http_saved([{"name": "w", "shape": [weight_bytes // 4], "dtype": "float32"}], b"")
    prefix = (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="model.json"; '
            f'filename="model.json"\r\n\r\n'
        ).encode()
        + model.model_json
        + (
            f'\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name="model.weights.bin"; '
            f'filename="model.weights.bin"\r\n\r\n'
        ).encode()
    )
    total = len(prefix) + weight_bytes + len(f"\r\n--{BOUNDARY}--\r\n")
    return total.to_bytes(8, "big"), prefix


@pytest.mark.parametrize("store", ["indexeddb", "file"])
def test_client_disconnect_mid_upload_stores_nothing(server: str, store: str) -> None:
    with httpx.Client(base_url=server) as client:
        saved = client.post(
            f"/v1/models/{store}/m",
            files={
                "model.json": ("model.json", dense_model().model_json),
                "model.weights.bin": ("model.weights.bin", dense_model().weight_bytes),
            },
        )
        assert saved.status_code == 201
        before = client.get(f"/v1/models/{store}/m").json()
        weight_bytes = 8 << 20
        total, prefix = _head_and_partial_body(weight_bytes)
        host, port = server.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as raw:
            raw.sendall(
                f"POST /v1/models/{store}/m HTTP/1.1\r\nHost: {host}\r\n"
                f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
                f"Content-Length: {int.from_bytes(total, 'big')}\r\n\r\n".encode()
                + prefix
                + b"\0" * (weight_bytes // 2)
            )
            time.sleep(0.5)  # the server is now streaming the weights into the backend
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            after = client.get(f"/v1/models/{store}/m").json()
            assert after == before
            time.sleep(0.2)
        assert client.get(f"/v1/models/{store}/m/model.json").json()["weightsManifest"][0][
            "paths"
        ] == [f"~v/{before['currentVersion']}/model.weights.bin"]


def test_stray_files_gone_after_disconnect(tmp_path: Path) -> None:
    stores = {"file": f"file://{tmp_path / 'f'}"}
    with live_server(Settings(stores=stores)) as server:
        total, prefix = _head_and_partial_body(4 << 20)
        host, port = server.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as raw:
            raw.sendall(
                f"POST /v1/models/file/gone HTTP/1.1\r\nHost: {host}\r\n"
                f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
                f"Content-Length: {int.from_bytes(total, 'big')}\r\n\r\n".encode()
                + prefix
                + b"\0" * (1 << 20)
            )
            time.sleep(0.5)
        deadline = time.monotonic() + 3
        while any((tmp_path / "f").rglob("*")) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [p for p in (tmp_path / "f").rglob("*") if p.is_file()] == []


def test_modelshelf_serve_cli_starts_on_the_embedded_default(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "MODELSHELF_DATA_DIR": str(tmp_path / "data")}
    process = subprocess.Popen(
        [sys.executable, "-m", "modelshelf", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    try:
        stores = _wait_for(f"http://127.0.0.1:{port}/v1/stores")
        kinds = {store["name"]: store["kind"] for store in stores["stores"]}
        assert kinds == {"file": "file", "indexeddb": "sqlite", "localstorage": "sqlite"}
        quota = {s["name"]: s["quotaBytes"] for s in stores["stores"]}["localstorage"]
        assert quota == 10 * 1024 * 1024
        assert (tmp_path / "data" / "indexeddb.sqlite").exists()
    finally:
        process.terminate()
        process.wait(timeout=20)
        assert process.stdout is not None
        process.stdout.close()


def _wait_for(url: str) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + 30
    while True:
        try:
            return httpx.get(url).json()  # type: ignore[no-any-return]
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_cli_help_is_readable() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "modelshelf", "serve", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--port" in result.stdout and "--config" in result.stdout


def test_toml_settings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "modelshelf.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "d"}"\nmax_body_bytes = 1234\n'
        f'[stores]\nteam = "file://{tmp_path / "team"}"\n[quotas]\nteam = 99\n'
    )
    monkeypatch.delenv("MODELSHELF_CONFIG", raising=False)
    monkeypatch.setenv("MODELSHELF_PORT", "9999")
    settings = load_settings(config)
    assert settings.store_urls() == {"team": f"file://{tmp_path / 'team'}"}
    assert (settings.quotas, settings.max_body_bytes, settings.port) == ({"team": 99}, 1234, 9999)


def test_s3_url_adds_the_s3_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELSHELF_S3_URL", "s3://bucket/prefix?endpoint_url=http://127.0.0.1:1")
    assert Settings().store_urls()["s3"].startswith("s3://bucket/prefix")


def test_readyz_reports_an_unreachable_backend(tmp_path: Path) -> None:
    stores = {
        "file": f"file://{tmp_path / 'f'}",
        "s3": f"s3://nobucket?endpoint_url=http://127.0.0.1:{free_port()}&region=us-east-1",
    }
    env_keys = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"}
    saved = {key: os.environ.get(key) for key in env_keys}
    os.environ.update(env_keys)
    try:
        with live_server(Settings(stores=stores)) as server:
            ready = httpx.get(f"{server}/readyz", timeout=30)
    finally:
        for key, value in saved.items():
            os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)
    assert ready.status_code == 503
    body = ready.json()
    assert body["stores"]["file"] == "ok" and body["stores"]["s3"] != "ok"


def test_cors_with_credentials_echoes_the_origin(tmp_path: Path) -> None:
    settings = Settings(
        stores={"file": f"file://{tmp_path}"},
        cors_origins=["http://app.test"],
        cors_allow_credentials=True,
    )
    with live_server(settings) as server:
        response = httpx.get(
            f"{server}/v1/models/file/missing/model.json", headers={"Origin": "http://app.test"}
        )
    assert response.status_code == 404
    assert response.headers["access-control-allow-origin"] == "http://app.test"
    assert response.headers["access-control-allow-credentials"] == "true"
    assert json.loads(response.text)["code"] == "model_not_found"
