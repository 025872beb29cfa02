"""Debian's Chromium driven by playwright: the browser users have, no browser download.

``offline_context`` blocks every request that leaves the server, so a page that still needs
a CDN shows it: the blocked URLs are recorded for the assertion message.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Route, sync_playwright

CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium for one test module or test."""
    if not CHROMIUM.exists():
        pytest.fail("Chromium is not installed; run `apt-get install -y chromium`")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def offline_context(browser: Browser, server: str, **options: object) -> Iterator[OfflineContext]:
    """A browser context that can reach ``server`` and nothing else."""
    context = browser.new_context(**options)  # type: ignore[arg-type]
    offline = OfflineContext(context, server)
    context.route("**/*", offline.route)
    try:
        yield offline
    finally:
        context.close()


class OfflineContext:
    def __init__(self, context: BrowserContext, server: str) -> None:
        self.context = context
        self.origin = _origin(server)
        self.blocked: list[str] = []

    def route(self, route: Route) -> None:
        url = route.request.url
        if _origin(url) == self.origin or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort("internetdisconnected")


def screenshot_path(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / f"{name}.png"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
