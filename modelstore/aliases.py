"""Aliases: stable names (``prod``) for versions, moved atomically with conditional puts.

Each alias is one small object, ``~aliases/NAME/~ALIAS``, holding the version id it points
to. A conditional move reads it and replaces it only if its etag is still the one read
(``ReplaceIfEtag``); creating one is ``CreateOnly``. So of two processes racing the same
conditional move over one store, exactly one wins, on every backend that declares the modes.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from modelshelf.backends import Backend, CreateOnly, NotFoundError, ReplaceIfEtag
from modelshelf.backends import PreconditionFailedError as PutRefused
from modelshelf.backends.ops import delete_if_present, iter_keys, put_bytes
from modelshelf.modelstore import layout
from modelshelf.modelstore.errors import AliasNotFoundError, PreconditionFailedError


@dataclass(frozen=True, slots=True)
class AliasState:
    version_id: str
    etag: str


class AliasBook:
    """The aliases of every model of one store."""

    def __init__(self, backend: Backend, url_of: str) -> None:
        self.backend = backend
        self._store_url = url_of  # "indexeddb://", for messages

    async def all(self, name: str) -> dict[str, str]:
        """alias -> version id, for one model (one listing, one small read per alias)."""
        prefix = layout.alias_prefix(name)
        found: dict[str, str] = {}
        async for item in iter_keys(self.backend, prefix):
            alias = item.key[len(prefix) :]
            if "/" in alias:  # another model's: NAME/sub/~alias
                continue
            state = await self._state(name, alias)
            if state is not None:
                found[alias] = state.version_id
        return dict(sorted(found.items()))

    async def target(self, name: str, alias: str) -> str:
        state = await self._state(name, layout.validate_alias(alias))
        if state is None:
            raise AliasNotFoundError(f"{self._url(name)} has no alias {alias!r}")
        return state.version_id

    async def point(
        self,
        name: str,
        alias: str,
        version_id: str,
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> None:
        """Point ``alias`` at ``version_id``.

        Args:
            if_match: move only if the alias points at this version now.
            if_none_match: create only; refuse if the alias exists.

        Raises:
            PreconditionFailedError: the condition did not hold, or another move won a race.
        """
        layout.validate_alias(alias)
        data = _alias_object(version_id)
        key = layout.alias_key(name, alias)
        if if_none_match:
            await self._put(key, data, CreateOnly(), f"alias {alias!r} exists already")
            return
        if if_match is None:
            await put_bytes(self.backend, key, data)
            return
        state = await self._require(name, alias, if_match)
        await self._put(key, data, ReplaceIfEtag(state.etag), _moved(alias))

    async def remove(self, name: str, alias: str, *, if_match: str | None = None) -> str:
        """Delete an alias; returns the version it pointed to."""
        layout.validate_alias(alias)
        state = await self._require(name, alias, if_match)
        if not await delete_if_present(self.backend, layout.alias_key(name, alias)):
            raise AliasNotFoundError(f"{self._url(name)} has no alias {alias!r}")
        return state.version_id

    async def forget(self, name: str, aliases: Iterable[str]) -> None:
        """Delete these aliases of a model (all of them, when the model goes)."""
        for alias in aliases:
            await delete_if_present(self.backend, layout.alias_key(name, alias))

    async def _require(self, name: str, alias: str, if_match: str | None) -> AliasState:
        state = await self._state(name, alias)
        if state is None:
            if if_match is not None:
                raise PreconditionFailedError(
                    f"alias {alias!r} does not exist, so it does not point at {if_match}"
                )
            raise AliasNotFoundError(f"{self._url(name)} has no alias {alias!r}")
        if if_match is not None and state.version_id != if_match:
            raise PreconditionFailedError(
                f"alias {alias!r} points at {state.version_id}, not {if_match}; read the "
                f"model's info and retry"
            )
        return state

    async def _state(self, name: str, alias: str) -> AliasState | None:
        key = layout.alias_key(name, alias)
        try:
            stream = await self.backend.get(key)
        except NotFoundError:
            return None
        try:
            data = b"".join([chunk async for chunk in stream])
        finally:
            await stream.aclose()
        return AliasState(json.loads(data)["version"], stream.info.etag)

    async def _put(self, key: str, data: bytes, mode: CreateOnly | ReplaceIfEtag, why: str) -> None:
        try:
            await put_bytes(self.backend, key, data, mode)
        except PutRefused:
            raise PreconditionFailedError(why) from None

    def _url(self, name: str) -> str:
        return f"{self._store_url}{name}"


def _moved(alias: str) -> str:
    return f"alias {alias!r} was moved by another request meanwhile; read it again and retry"


def _alias_object(version_id: str) -> bytes:
    # The nonce makes every write a new value, so content-hashed etags change too.
    fields = {
        "version": version_id,
        "set_at": datetime.now(UTC).isoformat(),
        "nonce": secrets.token_hex(8),
    }
    return json.dumps(fields).encode()


__all__ = ["AliasBook", "AliasState"]
