"""Stores opened from backend URLs: the one place above ``backends/`` that knows a URL's scheme.

The service hands over its settings as plain values; it never imports a backend.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from modelshelf.backends import (
    KNOWN_SCHEMES,
    BufferBudget,
    CallLimits,
    ReadShares,
    backend_kind,
    open_backend,
)
from modelshelf.modelstore.shelf import Shelf
from modelshelf.modelstore.store import DEFAULT_MAX_MODEL_JSON_BYTES, ModelStore

__all__ = ["KNOWN_SCHEMES", "StoreLimits", "StoreSettingError", "check_store_url", "open_shelf"]


class StoreSettingError(ValueError):
    """A store's backend URL cannot be opened: a setting to fix before the server starts."""


@dataclass(frozen=True, slots=True)
class StoreLimits:
    """How hard each store may be pushed; see the server settings of the same names."""

    timeout_seconds: float = 10.0
    threads: int = 8
    upload_buffer_bytes: int = 32 << 20
    max_model_json_bytes: int = DEFAULT_MAX_MODEL_JSON_BYTES
    quotas: Mapping[str, int] = field(default_factory=dict)
    retention: Mapping[str, int] = field(default_factory=dict)


def check_store_url(url: str) -> str:
    """The backend kind of ``url`` (``sqlite``, ``s3`` ...); raises ValueError naming the known."""
    return backend_kind(url)


def open_shelf(urls: Mapping[str, str], limits: StoreLimits, setting: str = "stores") -> Shelf:
    """Open every store; their upload buffers share one budget, their reads one as well.

    Raises StoreSettingError naming ``setting`` and the store whose URL cannot be opened.
    """
    write_buffers = BufferBudget(limits.upload_buffer_bytes)
    read_shares = ReadShares()
    stores: dict[str, ModelStore] = {}
    for name, url in urls.items():
        call_limits = CallLimits(
            store=name,
            timeout=limits.timeout_seconds,
            threads=limits.threads,
            write_buffers=write_buffers.share(),
            read_shares=read_shares,
        )
        try:
            backend = open_backend(url, call_limits)
        except Exception as error:
            raise StoreSettingError(
                f"store {name!r} in {setting} cannot be opened: {error}; fix its backend URL"
            ) from error
        stores[name] = ModelStore(
            name,
            backend,
            kind=backend_kind(url),
            quota_bytes=limits.quotas.get(name),
            keep_versions=limits.retention.get(name),
            max_model_json_bytes=limits.max_model_json_bytes,
        )
    return Shelf(stores)
