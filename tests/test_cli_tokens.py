"""``modelshelf token`` and ``modelshelf share`` against a live tokens-mode server; --expires."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from modelshelf.cli import EXIT_NOT_ALLOWED, parse_duration
from tests.support.tfjs import tfjs

FIXTURE = Path(__file__).parent / "fixtures" / "graph_model"
ADMIN = "ADMIN"
BAD_TOKEN = "msk_0000000000000000_" + "x" * 43


@pytest.fixture(scope="module")
def server(serve_module: Callable[..., str]) -> str:
    return serve_module("indexeddb", "file", auth="tokens", admin_token=ADMIN)


def cli(
    server: str, *args: str, token: str | None = ADMIN, expect: int = 0, **env: str
) -> subprocess.CompletedProcess[str]:
    """``python -m modelshelf ARGS --server SERVER [--token TOKEN]``, no MODELSHELF_TOKEN
    unless given in ``env``."""
    environment = {k: v for k, v in os.environ.items() if k != "MODELSHELF_TOKEN"} | env
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "modelshelf",
            *args,
            "--server",
            server,
            *(["--token", token] if token is not None else []),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
    )
    assert result.returncode == expect, (result.stdout, result.stderr)
    return result


def cli_json(server: str, *args: str, **options: Any) -> Any:
    return json.loads(cli(server, *args, "--json", **options).stdout)


def test_token_create_ls_revoke(server: str) -> None:
    created = cli_json(
        server, "token", "create", "ci", "--scope", "write:indexeddb/team/*", "--scope", "read:*"
    )
    assert created["name"] == "ci" and created["expiresAt"] is None
    assert created["scopes"] == ["write:indexeddb/team/*", "read:*"]
    assert created["token"].startswith(f"msk_{created['id']}_")
    listed = cli_json(server, "token", "ls")
    assert created["id"] in [token["id"] for token in listed]
    assert all("token" not in token for token in listed)  # secrets are never listed
    rows = cli(server, "token", "ls").stdout.splitlines()
    row = next(line.split("\t") for line in rows if line.startswith(created["id"]))
    assert row[1:3] == ["ci", "write:indexeddb/team/*,read:*"]
    assert row[4] == "never" and datetime.fromisoformat(row[3])
    revoked = cli(server, "token", "revoke", created["id"])
    assert f"revoked token 'ci' (id {created['id']})" in revoked.stdout
    assert created["id"] not in [token["id"] for token in cli_json(server, "token", "ls")]
    again = cli(server, "token", "revoke", created["id"], expect=3)
    assert "no token has the id" in again.stderr


def test_token_create_prints_the_token_alone_once(server: str) -> None:
    result = cli(server, "token", "create", "reader", "--scope", "read:*", "--expires", "2w")
    token = result.stdout.strip()
    assert token.startswith("msk_") and "\n" not in token
    assert "will not be shown again" in result.stderr
    assert "read:*" in result.stderr and "expires 20" in result.stderr
    assert "no models" in cli(server, "ls", "file", token=token).stdout
    [info] = [t for t in cli_json(server, "token", "ls") if token.startswith(f"msk_{t['id']}_")]
    lifetime = datetime.fromisoformat(info["expiresAt"]) - datetime.fromisoformat(info["createdAt"])
    assert lifetime == timedelta(weeks=2)


def test_share_prints_a_url_that_loads_alone(server: str) -> None:
    first = cli_json(server, "push", str(FIXTURE), "indexeddb://shared/graph")
    cli(server, "push", str(FIXTURE), "indexeddb://shared/graph")
    result = cli(server, "share", "indexeddb://shared/graph", "--expires", "15m")
    url = result.stdout.strip()
    assert url.startswith(f"{server}/v1/models/indexeddb/shared/graph/model.json?token=msk_")
    assert "until 20" in result.stderr
    document = httpx.get(url).raise_for_status().json()
    assert document["format"] == "graph-model"

    link = cli_json(server, "share", "indexeddb://shared/graph", "--version", first["versionId"])
    assert set(link) == {"url", "token", "expiresAt"}
    lifetime = datetime.fromisoformat(link["expiresAt"]) - datetime.now(UTC)
    assert timedelta(minutes=58) < lifetime <= timedelta(hours=1)  # the default: 1h
    answer = httpx.get(link["url"]).raise_for_status()
    assert answer.headers["X-Model-Version"] == first["versionId"]
    current = f"{server}/v1/models/indexeddb/shared/graph/model.json?token={link['token']}"
    assert httpx.get(current).status_code == 403


def test_not_allowed_exits_with_5_and_the_servers_message(server: str) -> None:
    assert EXIT_NOT_ALLOWED == 5
    malformed = cli(server, "ls", "indexeddb", token="not-a-token", expect=5)
    assert "malformed" in malformed.stderr and "MODELSHELF_TOKEN" in malformed.stderr
    unknown = cli(server, "ls", "indexeddb", token=BAD_TOKEN, expect=5)
    assert "not valid here" in unknown.stderr
    missing = cli(server, "ls", "indexeddb", token=None, expect=5)
    assert "needs a token" in missing.stderr
    reader = cli(server, "token", "create", "r", "--scope", "read:file").stdout.strip()
    forbidden = cli(server, "token", "ls", token=reader, expect=5)
    assert "this needs the scope admin:*" in forbidden.stderr
    refused = cli(server, "push", str(FIXTURE), "indexeddb://x", token=reader, expect=5)
    assert "write:indexeddb/x" in refused.stderr


def test_the_token_comes_from_the_environment(server: str) -> None:
    listed = cli_json(server, "token", "ls", token=None, MODELSHELF_TOKEN=ADMIN)
    assert isinstance(listed, list)
    override = cli(server, "token", "ls", token=BAD_TOKEN, expect=5, MODELSHELF_TOKEN=ADMIN)
    assert "not valid here" in override.stderr  # --token wins over the environment


def test_a_bad_scope_or_duration_is_a_usage_error(server: str) -> None:
    scope = cli(server, "token", "create", "x", "--scope", "read", expect=2)
    assert "ACTION:STORE" in scope.stderr
    duration = cli(server, "share", "indexeddb://m", "--expires", "1y", expect=2)
    assert "90 (seconds), 30s, 15m, 1h, 7d or 2w" in duration.stderr
    assert "--expires" in duration.stderr
    no_scope = cli(server, "token", "create", "x", expect=2)
    assert "--scope" in no_scope.stderr


def test_tokens_on_a_server_without_them_fail_with_its_message(
    serve_module: Callable[..., str],
) -> None:
    open_server = serve_module("indexeddb", auth="none")
    result = cli(open_server, "token", "ls", token=None, expect=1)
    assert "MODELSHELF_AUTH=tokens" in result.stderr


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("30s", 30), ("15m", 900), ("1h", 3600), ("7d", 604_800), ("2w", 1_209_600)],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "0", "0h", "-5", "1.5h", "h", "1y", "1 h", " 1h", "1H", "1hh", "٣", "4000w"]
)
def test_bad_durations_name_the_accepted_forms(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as raised:
        parse_duration(text)
    assert repr(text) in str(raised.value)
    if text != "4000w":
        assert "90 (seconds), 30s, 15m, 1h, 7d or 2w" in str(raised.value)


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        (["token", "create"], ["--scope", "--expires", "examples:", "never shown again"]),
        (["token", "ls"], ["examples:", "modelshelf token ls --json"]),
        (["token", "revoke"], ["examples:", "share", "links it made end"]),
        (["share"], ["examples:", "--expires", "--version", "tf.loadLayersModel"]),
        (["token"], ["create", "ls", "revoke", "admin:*"]),
        ([], ["token", "share", "5 not allowed"]),
    ],
)
def test_help_describes_the_token_commands(command: list[str], shown: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "modelshelf", *command, "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    for text in shown:
        assert text in result.stdout, text


@pytest.mark.node
def test_a_shared_model_loads_in_tfjs_with_the_link_alone(server: str) -> None:
    # TF.js copies model.json's query (the token) onto every weight URL (protocol doc §5).
    cli(server, "push", str(FIXTURE), "file://tfjs/graph")
    url = cli(server, "share", "file://tfjs/graph").stdout.strip()
    x = [[1.0, -2.0, 0.5]]
    loaded = tfjs("load-graph", "--url", url, "--input", json.dumps(x))
    spec = importlib.util.spec_from_file_location("fixture", FIXTURE.parent / "make_graph_model.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    want = np.asarray(module.expected_output(np.array(x, dtype=np.float32)), dtype=np.float32)
    np.testing.assert_array_equal(np.array(loaded["outputs"], dtype=np.float32), want)
