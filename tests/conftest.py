"""Shared fixtures: every backend kind, a SeaweedFS S3 server, stores over each backend."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from modelshelf.backends import Backend, open_backend
from modelshelf.modelstore import ModelStore

# CI explores the same examples every run, so a landing never hangs on a lucky draw; local
# runs keep exploring new ones.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

BACKEND_KINDS = ["memory", "file", "sqlite", pytest.param("s3", marks=pytest.mark.s3)]
S3_BUCKET = "modelshelf-tests"


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


def backend_url_for(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A fresh, empty backend of ``kind``: its own folder, file or S3 prefix."""
    if kind == "memory":
        return "memory://"
    if kind == "file":
        return f"file://{tmp_path / 'files'}"
    if kind == "sqlite":
        return f"sqlite://{tmp_path / 'store.sqlite'}"
    server = request.getfixturevalue("seaweed")
    return server.backend_url(S3_BUCKET, f"t-{uuid.uuid4().hex[:12]}")  # type: ignore[attr-defined,no-any-return]


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


def every_store(data: Path, seaweed: object, label: str) -> dict[str, str]:
    """The four stores a default server has, plus s3 on the session's SeaweedFS."""
    return {
        "file": f"file://{data / 'models'}",
        "indexeddb": f"sqlite://{data / 'indexeddb.sqlite'}",
        "localstorage": f"sqlite://{data / 'localstorage.sqlite'}",
        "s3": seaweed.backend_url(S3_BUCKET, f"{label}-{uuid.uuid4().hex[:8]}"),  # type: ignore[attr-defined]
    }
