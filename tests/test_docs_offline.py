"""``/docs`` and ``/redoc`` render in Chromium with every request outside the server blocked
(issue 13): Swagger UI's and ReDoc's assets come from the fastapi-offline package."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Browser, expect

from tests.support.chromium import offline_context, screenshot_path

pytestmark = pytest.mark.browser
RENDER_TIMEOUT_MS = 30_000


@pytest.fixture(scope="module", params=["none", "tokens"])
def server(request: pytest.FixtureRequest, serve_module: Callable[..., str]) -> tuple[str, str]:
    """A server without tokens, and one that demands them: the docs need none either way."""
    auth: str = request.param
    return serve_module("file", auth=auth, admin_token="docs-admin-token"), auth


def test_swagger_ui_renders_the_operations_offline(
    browser: Browser, server: tuple[str, str]
) -> None:
    url, auth = server
    with offline_context(browser, url) as offline:
        page = offline.context.new_page()
        page.goto(f"{url}/docs")
        operation = page.locator("#operations-models-listModels")
        expect(operation).to_be_visible(timeout=RENDER_TIMEOUT_MS)
        expect(operation).to_contain_text("/v1/models/{store}")
        expect(page.locator(".info .title")).to_contain_text("modelshelf")
        page.screenshot(path=screenshot_path(f"docs-swagger-{auth}"), full_page=False)
        assert offline.blocked == []


def test_redoc_renders_the_title_and_operations_offline(
    browser: Browser, server: tuple[str, str]
) -> None:
    url, auth = server
    with offline_context(browser, url) as offline:
        page = offline.context.new_page()
        page.goto(f"{url}/redoc")
        expect(page.locator("h1").first).to_contain_text("modelshelf", timeout=RENDER_TIMEOUT_MS)
        expect(page.locator("h2", has_text="List Models").first).to_be_attached()
        page.screenshot(path=screenshot_path(f"docs-redoc-{auth}"), full_page=False)
        assert offline.blocked == []


def test_docs_assets_need_no_token_and_pages_allow_only_the_server(
    browser: Browser, server: tuple[str, str]
) -> None:
    url, _auth = server
    with offline_context(browser, url) as offline:
        script = offline.context.request.get(f"{url}/docs-assets/swagger-ui-bundle.js")
        assert script.status == 200
        assert "javascript" in script.headers["content-type"]
        page = offline.context.request.get(f"{url}/redoc")
        assert "default-src 'self'" in page.headers["content-security-policy"]
