"""Async byte stores behind one Protocol, opened from a URL.

    >>> backend = open_backend("sqlite://./data/indexeddb.sqlite")

Schemes: ``memory://``, ``file://PATH``, ``sqlite://PATH``,
``s3://BUCKET[/PREFIX][?endpoint_url=...&region=...&path_style=true]``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

from modelshelf.backends.buffers import BufferBudget
from modelshelf.backends.concurrency import CallLimits
from modelshelf.backends.errors import (
    InsufficientStorageError,
    InvalidKeyError,
    InvalidRangeError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    ReadOnlyStoreError,
    StorageError,
    UnavailableError,
)
from modelshelf.backends.protocol import (
    Backend,
    Capabilities,
    ListPage,
    ObjectInfo,
    ObjectStream,
    SweptItem,
)
from modelshelf.backends.putmodes import CreateOnly, PutMode, ReplaceIfEtag
from modelshelf.backends.readshares import ReadShares

__all__ = [
    "KNOWN_SCHEMES",
    "Backend",
    "BufferBudget",
    "CallLimits",
    "Capabilities",
    "CreateOnly",
    "InsufficientStorageError",
    "InvalidKeyError",
    "InvalidRangeError",
    "ListPage",
    "NotFoundError",
    "ObjectInfo",
    "ObjectStream",
    "PermissionDeniedError",
    "PreconditionFailedError",
    "PutMode",
    "ReadOnlyStoreError",
    "ReadShares",
    "ReplaceIfEtag",
    "StorageError",
    "SweptItem",
    "UnavailableError",
    "UnknownSchemeError",
    "backend_kind",
    "open_backend",
]

# scheme -> "module:factory"; imported lazily so boto3 loads only for s3 stores.
_REGISTRY: dict[str, str] = {
    "memory": "modelshelf.backends.memory:from_url",
    "file": "modelshelf.backends.local:from_url",
    "sqlite": "modelshelf.backends.sqlite:from_url",
    "s3": "modelshelf.backends.s3:from_url",
}
KNOWN_SCHEMES = tuple(_REGISTRY)


class UnknownSchemeError(ValueError):
    """The backend URL names a scheme no backend implements: a setting to fix before startup."""


def backend_kind(url: str) -> str:
    """The scheme of a backend URL, checked against the registry."""
    scheme = urlsplit(url).scheme
    if "://" not in url or scheme not in _REGISTRY:
        known = ", ".join(f"{name}://" for name in KNOWN_SCHEMES)
        raise UnknownSchemeError(f"unknown backend URL {url!r}: use one of {known}")
    return scheme


def open_backend(url: str, limits: CallLimits | None = None) -> Backend:
    """Open the backend a URL names; raises UnknownSchemeError with the known schemes.

    ``limits`` name the store in messages and bound the backend's blocking calls.
    """
    module_name, factory_name = _REGISTRY[backend_kind(url)].split(":")
    factory: Callable[[str, dict[str, str], CallLimits | None], Backend]
    factory = getattr(importlib.import_module(module_name), factory_name)
    return factory(_url_body(url), _url_options(url), limits)


def _url_body(url: str) -> str:
    """Everything between ``scheme://`` and the query string."""
    return url.split("://", 1)[1].split("?", 1)[0]


def _url_options(url: str) -> dict[str, str]:
    query = urlsplit(url).query
    return {name: values[-1] for name, values in parse_qs(query).items()}
