"""Shared fixtures: every backend kind, a SeaweedFS S3 server, stores over each backend."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from playwright.sync_api import Browser

from modelshelf.backends import Backend, open_backend
from modelshelf.modelstore import ModelStore
from modelshelf.service.settings import Settings
from tests.support.chromium import chromium
from tests.support.live_server import live_server
from tests.support.stores import (
    BACKEND_KINDS,
    S3_BUCKET,
    SERVER_STORES,
    STORE_FACTORIES,
    Place,
    backend_url_for,
    server_store_urls,
)

# CI explores the same examples every run, so a landing never hangs on a lucky draw; local
# runs keep exploring new ones.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

__all__ = ["BACKEND_KINDS", "S3_BUCKET", "backend_url_for", "every_store"]


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """One real SeaweedFS S3 server for the session, with signatures checked."""
    from tests.support.seaweed import SeaweedS3

    server = SeaweedS3.start(tmp_path_factory.mktemp("seaweed"))
    try:
        server.create_bucket(S3_BUCKET)
        saved = {name: os.environ.get(name) for name in server.env()}
        os.environ.update(server.env())
        yield server
    finally:
        server.stop()
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(params=BACKEND_KINDS)
def backend_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def backend_url(backend_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    return backend_url_for(backend_kind, tmp_path, request)


@pytest.fixture
async def backend(backend_url: str) -> AsyncIterator[Backend]:
    opened = open_backend(backend_url)
    yield opened
    await opened.close()


@pytest.fixture
async def model_store(backend: Backend) -> AsyncIterator[ModelStore]:
    yield ModelStore("indexeddb", backend)


def every_store(data: Path, seaweed: object, label: str = "") -> dict[str, str]:
    """The four stores a default server has, plus s3 on the session's SeaweedFS."""
    return {
        name: STORE_FACTORIES[kind](Place(data / name, lambda: seaweed))
        for name, kind in SERVER_STORES.items()
    }


@pytest.fixture(scope="module")
def serve_module(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Callable[..., str]]:
    """Start real servers for a module: ``serve_module("file", "s3", max_body_bytes=...)``.

    Each server gets the named stores (see tests.support.stores.SERVER_STORES), fresh, and
    the settings given; all stop when the module ends. Yields the base URL.
    """
    with ExitStack() as servers:

        def start(*stores: str, **settings: Any) -> str:
            data = tmp_path_factory.mktemp("server")
            urls = server_store_urls(data, request, stores or SERVER_STORES)
            settings.setdefault("data_dir", data)
            url: str = servers.enter_context(live_server(Settings(stores=urls, **settings)))
            return url

        yield start


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium through playwright, for one test module."""
    with chromium() as launched:
        yield launched
