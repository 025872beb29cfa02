"""The console with tokens on, in Chromium: it asks for a token and shows only what it allows.

The token is typed into the page, kept in sessionStorage and sent as a bearer header; the
server renders each page for that token's scopes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.modelfactory import layers_model
from tests.support.chromium import screenshot_path
from tests.support.formdata import post_model
from tests.support.tokens import bearer, issue_token

pytestmark = pytest.mark.browser
ADMIN = "admin-token-console"
NAME = "team/guarded"


@pytest.fixture(scope="module")
def server(serve_module: Callable[..., str]) -> str:
    url = serve_module("indexeddb", "file", auth="tokens", admin_token=ADMIN)
    for seed in (1, 2):
        saved = post_model(f"{url}/v1/models/indexeddb/{NAME}", layers_model(seed), bearer(ADMIN))
        assert saved.status_code == 201, saved.text
    return url


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    yield page
    context.close()


def _sign_in(page: Page, server: str, token: str) -> None:
    page.goto(server + "/")
    expect(page.locator("[data-needs-token]")).to_be_visible()
    page.fill("#token-input", token)
    page.locator("#token-form button[type='submit']").click()
    expect(page.locator("tr[data-store='indexeddb']")).to_be_visible()


def test_without_a_token_the_console_asks_for_one(server: str, page: Page) -> None:
    response = page.goto(f"{server}/ui/indexeddb/{NAME}")
    assert response is not None and response.status == 401
    expect(page.locator("[data-needs-token] h1")).to_contain_text("needs a token")
    expect(page.locator("table.weights")).to_have_count(0)  # nothing of the model leaks


def test_a_read_only_token_sees_no_remove_button_and_a_forced_remove_shows_403(
    server: str, page: Page
) -> None:
    token = issue_token(server, ADMIN, "console-reader", ["read:indexeddb"])
    _sign_in(page, server, token)
    expect(page.locator("tr[data-store='file']")).to_have_count(0)  # no scope reaches it
    page.get_by_role("link", name="indexeddb").click()
    page.get_by_role("link", name=NAME).click()
    expect(page.locator("table.weights tbody tr")).to_have_count(4)
    expect(page.locator("[data-action]")).to_have_count(0)
    expect(page.locator("#alias-form, #transfer-form, #upload-form")).to_have_count(0)
    page.screenshot(path=screenshot_path("console-read-only"), full_page=True)

    version = page.locator("table.versions tbody tr").first.get_attribute("data-version")
    page.evaluate(  # the request a hidden button would have made, forced through the page
        """(version) => {
            const button = document.createElement("button");
            button.dataset.action = "remove-version";
            button.dataset.version = version;
            document.getElementById("model").append(button);
            button.click();
        }""",
        version,
    )
    message = page.locator("#messages .error")
    expect(message).to_contain_text("forbidden")
    expect(message).to_contain_text("HTTP 403")
    expect(message).to_contain_text("delete:indexeddb")
    expect(page.locator(f"tr[data-version='{version}']")).to_have_count(1)


def test_an_admin_token_sees_every_action_and_makes_a_share_link(server: str, page: Page) -> None:
    _sign_in(page, server, ADMIN)
    page.goto(f"{server}/ui/indexeddb/{NAME}")  # a fresh load: the token is in sessionStorage
    expect(page.locator("button[data-action='remove-version']")).to_have_count(2)
    expect(page.locator("button[data-action='remove-model']")).to_have_count(1)
    page.locator("#share").click()
    expect(page.locator("#share-url")).to_have_value(re.compile(r"/model\.json\?token=msk_"))


def test_a_refused_token_is_reported_on_the_page(server: str, page: Page) -> None:
    page.goto(server + "/")
    page.fill("#token-input", "msk_0123456789abcdef_" + "x" * 43)
    page.locator("#token-form button[type='submit']").click()
    expect(page.locator("#messages .error")).to_contain_text("HTTP 401")
