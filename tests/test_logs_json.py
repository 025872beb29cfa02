"""``modelshelf serve --log-format json``: every line is a JSON object, each request has one
access line (method, route template, status, bytes, duration, request id), the request id is
the response's ``X-Request-Id``, and no token ever reaches the log (issue 13)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.modelfactory import dense_model
from tests.support.formdata import form_body
from tests.support.live_server import free_port
from tests.support.tokens import bearer, issue_token

ADMIN = "json-logs-admin-token"
BOUNDARY = "json-logs-boundary"


class JsonServer:
    def __init__(self, data: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stdout = data / "stdout.log"
        self.stderr = data / "stderr.log"
        env = {
            **os.environ,
            "MODELSHELF_STORES": json.dumps({"file": f"file://{data / 'models'}"}),
            "MODELSHELF_DATA_DIR": str(data),
            "MODELSHELF_AUTH": "tokens",
            "MODELSHELF_ADMIN_TOKEN": ADMIN,
        }
        command = [sys.executable, "-m", "modelshelf", "serve", "--port", str(self.port)]
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.process = subprocess.Popen(
                [*command, "--log-format", "json"], env=env, stdout=out, stderr=err
            )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.stderr.read_text()
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError("the server did not start")

    def stop(self) -> None:
        self.process.terminate()  # SIGINT would end in a KeyboardInterrupt traceback
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def exchanges(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Requests made against a JSON-logging server, then the server's output once it stopped."""
    server = JsonServer(tmp_path_factory.mktemp("json-logs"))
    try:
        server.wait_ready()
        yield {"responses": _script(server.url), **_stop_and_read(server)}
    finally:
        if server.process.poll() is None:
            server.stop()


def _stop_and_read(server: JsonServer) -> dict[str, Any]:
    server.stop()
    return {"stdout": server.stdout.read_text(), "stderr": server.stderr.read_text()}


def _script(url: str) -> dict[str, Any]:
    reader = issue_token(url, ADMIN, "reader", ["read:*"])
    model = dense_model(4)
    body = form_body(
        [("model.json", model.model_json), ("model.weights.bin", model.weight_bytes)], BOUNDARY
    )
    headers = {**bearer(ADMIN), "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    saved = httpx.post(f"{url}/v1/models/file/logged", content=body, headers=headers)
    assert saved.status_code == 201, saved.text
    load = httpx.get(
        f"{url}/v1/models/file/logged/model.json?token={reader}",
        headers={"X-Request-Id": "client-chosen-42"},
    )
    assert load.status_code == 200
    weight_path = load.json()["weightsManifest"][0]["paths"][0]
    weights = httpx.get(f"{url}/v1/models/file/logged/{weight_path}?token={reader}")
    assert weights.status_code == 200
    refused = httpx.get(f"{url}/v1/stores", headers={"X-Request-Id": "bad id\twith tab"})
    assert refused.status_code == 401
    return {
        "reader": reader,
        "save": saved,
        "load": load,
        "weights": weights,
        "refused": refused,
        "body_bytes": len(body),
    }


def _lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _access_lines(exchanges: dict[str, Any]) -> dict[str, dict[str, Any]]:
    lines = [line for line in _lines(exchanges["stdout"]) if line["logger"] == "modelshelf.access"]
    by_id: dict[str, dict[str, Any]] = {}
    for line in lines:
        assert line["request_id"] not in by_id, f"logged twice: {line}"
        by_id[line["request_id"]] = line
    return by_id


def test_every_line_of_both_streams_is_a_json_object(exchanges: dict[str, Any]) -> None:
    lines = _lines(exchanges["stdout"]) + _lines(exchanges["stderr"])
    assert lines
    for line in lines:
        assert {"time", "level", "logger", "message"} <= line.keys()
    loggers = {line["logger"] for line in lines}
    assert "uvicorn.access" not in loggers  # uvicorn's own access log is off: one line each
    assert "uvicorn.error" in loggers  # its start-up lines are JSON too


def test_each_response_has_one_access_line_under_its_request_id(
    exchanges: dict[str, Any],
) -> None:
    responses = exchanges["responses"]
    lines = _access_lines(exchanges)
    assert responses["load"].headers["X-Request-Id"] == "client-chosen-42"  # reused
    expected = {
        "save": ("POST", "/v1/models/{store}/{name}", 201),
        "load": ("GET", "/v1/models/{store}/{name}/model.json", 200),
        "weights": ("GET", "/v1/models/{store}/{name}/~v/{version}/{path}", 200),
        "refused": ("GET", "/v1/stores", 401),
    }
    for name, (method, route, status) in expected.items():
        response = responses[name]
        line = lines[response.headers["X-Request-Id"]]
        assert (line["method"], line["route"], line["status"]) == (method, route, status)
        assert line["bytes_sent"] == len(response.content)
        assert 0 < line["duration_seconds"] < 30
        assert line["client"] == "127.0.0.1"
    assert (
        lines[responses["save"].headers["X-Request-Id"]]["bytes_received"]
        == responses["body_bytes"]
    )
    assert lines[responses["save"].headers["X-Request-Id"]]["store"] == "file"


def test_an_insane_request_id_is_replaced_by_a_fresh_one(exchanges: dict[str, Any]) -> None:
    replaced = exchanges["responses"]["refused"].headers["X-Request-Id"]
    assert len(replaced) == 32 and replaced.isalnum()
    assert replaced in _access_lines(exchanges)


def test_no_token_reaches_the_log(exchanges: dict[str, Any]) -> None:
    output = exchanges["stdout"] + exchanges["stderr"]
    reader = exchanges["responses"]["reader"]
    assert reader.startswith("msk_")
    assert reader not in output
    assert ADMIN not in output  # the bearer header of the save and of POST /v1/tokens
    load_id = exchanges["responses"]["load"].headers["X-Request-Id"]
    assert _access_lines(exchanges)[load_id]["path"] == (
        "/v1/models/file/logged/model.json?token=REDACTED"
    )
