"""Put modes, in the style of obstore's ``PutMode``: overwrite, create-only, replace-if-etag.

None overwrites. A conditional put whose condition fails raises PreconditionFailedError and
leaves the stored value as it was. ``Capabilities.put_create`` and ``put_replace_if_etag``
say whether a backend checks the condition atomically with the write.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelshelf.backends.errors import PreconditionFailedError


@dataclass(frozen=True, slots=True)
class CreateOnly:
    """Store only if the key holds no value."""


@dataclass(frozen=True, slots=True)
class ReplaceIfEtag:
    """Replace only the value whose etag is ``etag``."""

    etag: str


PutMode = CreateOnly | ReplaceIfEtag | None


def check_put_mode(mode: PutMode, key: str, current_etag: str | None) -> None:
    """Raise PreconditionFailedError unless ``key`` (etag ``current_etag``, None if absent)
    may be written in ``mode``; for backends that check it themselves under a lock."""
    if isinstance(mode, CreateOnly) and current_etag is not None:
        raise PreconditionFailedError(f"{key!r} already exists")
    if isinstance(mode, ReplaceIfEtag) and current_etag != mode.etag:
        state = "is absent" if current_etag is None else "has changed"
        raise PreconditionFailedError(f"{key!r} {state} since it was read")
