"""One table from backend kind to a fresh store URL: every store-parametrised fixture uses it.

A new backend is one module under backends/ plus one row here; the contract suite, the model
suite, the SDK and the end-to-end servers then all run over it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

S3_BUCKET = "modelshelf-tests"


@dataclass(frozen=True)
class Place:
    """Where a fresh store may live: its own folder, and the session's SeaweedFS on demand."""

    folder: Path
    seaweed: Callable[[], Any]


def _memory(place: Place) -> str:
    return "memory://"


def _file(place: Place) -> str:
    return f"file://{place.folder / 'files'}"


def _sqlite(place: Place) -> str:
    return f"sqlite://{place.folder / 'store.sqlite'}"


def _s3(place: Place) -> str:
    url: str = place.seaweed().backend_url(S3_BUCKET, f"t-{uuid.uuid4().hex[:12]}")
    return url


STORE_FACTORIES: dict[str, Callable[[Place], str]] = {
    "memory": _memory,
    "file": _file,
    "sqlite": _sqlite,
    "s3": _s3,
}
NEEDS_SEAWEED = {"s3"}
BACKEND_KINDS = [
    pytest.param(kind, marks=pytest.mark.s3) if kind in NEEDS_SEAWEED else kind
    for kind in STORE_FACTORIES
]
# The stores a default server has (store name -> backend kind), plus s3.
SERVER_STORES = {"file": "file", "indexeddb": "sqlite", "localstorage": "sqlite", "s3": "s3"}


def place_for(folder: Path, request: pytest.FixtureRequest) -> Place:
    return Place(folder, lambda: request.getfixturevalue("seaweed"))


def backend_url_for(kind: str, folder: Path, request: pytest.FixtureRequest) -> str:
    """A fresh, empty backend of ``kind``: its own folder, file or S3 prefix."""
    folder.mkdir(parents=True, exist_ok=True)
    return STORE_FACTORIES[kind](place_for(folder, request))


def server_store_urls(
    folder: Path, request: pytest.FixtureRequest, names: Iterable[str] = SERVER_STORES
) -> dict[str, str]:
    """Store name -> backend URL for a server, each store in a folder of its own."""
    return {name: backend_url_for(SERVER_STORES[name], folder / name, request) for name in names}
