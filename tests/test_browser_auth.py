"""Headless Chromium on another origin uses TF.js with tokens against a tokens-mode server.

The page (tests/js/browser/auth_scenario.js) is served from its own 127.0.0.1 port, which the
server lists in its CORS origins. It saves with ``tf.io.http`` and an Authorization header
(Chromium preflights that POST, and a preflight never carries the token), loads with
``?token=`` and through a share link, and reads the 401 and 403 bodies, which a page on another
origin can only read because refusals carry CORS headers too.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.support.live_server import free_port
from tests.support.tfjs import JS_DIR, require_tfjs
from tests.support.tokens import bearer, issue_token

pytestmark = [pytest.mark.browser, pytest.mark.node]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-artifacts"
ADMIN = "admin-token-browser"
STORE = "indexeddb"


def run_page(server: str, page_port: int, params: dict[str, str]) -> dict[str, Any]:
    require_tfjs()
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is not installed; run `apt-get install -y chromium`")
    SCREENSHOTS.mkdir(exist_ok=True)
    screenshot = SCREENSHOTS / "browser-auth.png"
    args = ["node", str(JS_DIR / "browser_check.mjs"), "--server", server, "--page", "/auth"]
    args += ["--port", str(page_port), "--chromium", CHROMIUM, "--screenshot", str(screenshot)]
    for key, value in params.items():
        args += ["--param", f"{key}={value}"]
    completed = subprocess.run(args, capture_output=True, text=True, timeout=240, cwd=JS_DIR)
    lines = completed.stdout.strip().splitlines()
    assert lines, completed.stderr[-3000:]
    result: dict[str, Any] = json.loads(lines[-1])
    assert result["ok"], (
        f"{result.get('error')}\nlog:\n{result.get('log')}\nconsole: {result.get('console')}\n"
        f"screenshot: {screenshot}"
    )
    return result


def test_cross_origin_page_saves_with_a_bearer_header_and_loads_with_the_token_query(
    serve_module: Callable[..., str],
) -> None:
    page_port = free_port()
    page_origin = f"http://127.0.0.1:{page_port}"
    server = serve_module(STORE, auth="tokens", admin_token=ADMIN, cors_origins=[page_origin])
    prefix = f"browser-{uuid.uuid4().hex[:6]}"
    writer = issue_token(
        server, ADMIN, "page-writer", [f"write:{STORE}/{prefix}/*", f"read:{STORE}"]
    )
    reader = issue_token(server, ADMIN, "page-reader", [f"read:{STORE}"])

    result = run_page(
        server, page_port, {"store": STORE, "prefix": prefix, "writer": writer, "reader": reader}
    )
    assert result["origin"] == page_origin != server  # really another origin, the listed one
    name = f"{prefix}/saved model ü"
    model_path = f"{server}/v1/models/{STORE}/{quote(name, safe='/')}"

    # The save: 201, after a preflight that asked for authorization and carried no token.
    assert result["save"]["status"] == 201
    assert result["save"]["body"]["modelUrl"] == f"{STORE}://{name}"
    save_preflights = [p for p in result["preflights"] if p["url"] == model_path]
    assert save_preflights, result["preflights"]
    for preflight in save_preflights:
        headers = {key.lower(): value for key, value in preflight["headers"].items()}
        assert preflight["method"] == "OPTIONS"
        assert headers["access-control-request-method"] == "POST"
        assert headers["origin"] == page_origin
        assert "authorization" in headers["access-control-request-headers"].lower()
        assert "authorization" not in headers
        assert 200 <= preflight["status"] < 300
    # Loads with ?token= are simple GETs: nothing there is preflighted.
    assert not [p for p in result["preflights"] if "token=" in p["url"]]

    # Loads: ?token= on model.json (copied onto the weight URL), the header, a share link.
    assert len(result["want"]) == 4
    assert result["loadedWithQuery"] == result["want"]
    assert result["loadedWithHeader"] == result["want"]
    assert result["share"]["status"] == 201
    assert result["share"]["url"].startswith(f"{model_path}/model.json?")
    assert result["loadedWithShareLink"] == result["want"]

    # 401 without a token: body and challenge readable from the page.
    unauthorized = result["unauthorized"]
    assert unauthorized["status"] == 401
    assert unauthorized["body"]["code"] == "unauthorized"
    assert unauthorized["challenge"].startswith("Bearer")
    assert "status code 401" in result["loadWithoutToken"]
    anonymous = result["saveWithoutToken"]
    assert "HTTP response status 401" in anonymous["error"]
    assert anonymous["status"] == 401 and anonymous["body"]["code"] == "unauthorized"

    # 403 for a read-only token's save, naming the missing scope; reading it is fine.
    forbidden = result["saveWithReader"]
    assert "HTTP response status 403" in forbidden["error"]
    assert forbidden["status"] == 403
    assert forbidden["body"]["code"] == "forbidden"
    assert f"write:{STORE}/{prefix}/read only" in forbidden["body"]["message"]
    assert result["listWithReader"]["status"] == 200
    assert list(result["listWithReader"]["body"]) == [f"{STORE}://{name}"]

    # What the server holds: the one save, none of the refused ones.
    listing = httpx.get(
        f"{server}/v1/models/{STORE}", params={"prefix": f"{prefix}/"}, headers=bearer(ADMIN)
    )
    assert list(listing.json()) == [f"{STORE}://{name}"]
