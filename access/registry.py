"""Tokens on a shared backend: every replica over one auth store sees the same tokens.

A replica caches what it read about a token for ``cache_seconds``, so one token costs one
read per replica and interval, and a revocation through any replica is refused by every
other one within that interval (issue 10 asks for 5 s; the default is 2 s).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Collection
from datetime import datetime, timedelta

from modelshelf.access.errors import (
    ForbiddenError,
    InvalidScopeError,
    TokenNotFoundError,
    UnauthorizedError,
)
from modelshelf.access.scopes import EVERYTHING, Action, Grant, Scope, parse_scopes
from modelshelf.access.tokens import (
    TokenRecord,
    expiry,
    is_token_id,
    new_token,
    parse_token,
    secret_digest,
    utc_now,
)
from modelshelf.backends import Backend, CallLimits, NotFoundError, open_backend
from modelshelf.backends.ops import delete_if_present, iter_keys, put_bytes, read_all
from modelshelf.modelstore.opening import StoreSettingError

TOKENS_PREFIX = "~tokens/"
CACHE_SECONDS = 2.0
EXPIRED_KEPT = timedelta(days=7)  # expired tokens stay listed this long, then are swept
MAX_CACHED = 10_000


class TokenRegistry:
    """Issue, list, revoke and check tokens stored in ``backend``.

    Args:
        backend: the auth store (``MODELSHELF_AUTH_STORE``).
        admin_token: the operator's token, holding every scope; never stored.
        cache_seconds: how long a token read stays trusted on this replica.
    """

    def __init__(
        self,
        backend: Backend,
        admin_token: str | None,
        *,
        cache_seconds: float = CACHE_SECONDS,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.backend = backend
        self._admin_digest = _digest(admin_token) if admin_token else None
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._cache: dict[str, tuple[TokenRecord | None, float]] = {}

    async def authenticate(self, token: str) -> Grant:
        """The grant ``token`` carries; raises UnauthorizedError saying why there is none."""
        if self._admin_digest and hmac.compare_digest(_digest(token), self._admin_digest):
            return EVERYTHING
        parsed = parse_token(token)
        if parsed is None:
            raise UnauthorizedError(
                "the token is malformed: send the whole token this server issued "
                "(msk_...), as 'Authorization: Bearer TOKEN' or ?token=TOKEN"
            )
        token_id, secret = parsed
        record = await self._valid_record(token_id)
        if not record.matches(secret):
            raise UnauthorizedError(_UNKNOWN)
        await self._check_parents(record)
        return _grant_of(record)

    async def create(
        self,
        name: str,
        scopes: Collection[str],
        expires_in: int | None,
        creator: Grant,
        stores: Collection[str],
    ) -> tuple[TokenRecord, str]:
        """Issue a token; the answer's text is the only copy of its secret.

        Raises InvalidScopeError for a scope that does not parse or names an unknown store.
        """
        parsed = parse_scopes(scopes)
        if not parsed:
            raise InvalidScopeError("a token needs at least one scope, e.g. 'read:*'")
        for scope in parsed:
            if scope.store != "*" and scope.store not in stores:
                raise InvalidScopeError(
                    f"scope {str(scope)!r} names the store {scope.store!r}, which this server "
                    f"does not have; use one of {', '.join(sorted(stores))} or '*'"
                )
        ceiling = await self._expiry_of(creator)
        return await self._issue(name, tuple(map(str, parsed)), expires_in, ceiling)

    async def share(
        self, store: str, name: str, version: str | None, expires_in: int, creator: Grant
    ) -> tuple[TokenRecord, str]:
        """A token that reads exactly one model (one version, if given), never outliving
        ``creator``'s token; the caller has checked that ``creator`` may read it.

        Raises ForbiddenError when ``creator`` is itself a share link: whoever holds a link
        could otherwise fill the auth store with links of their own.
        """
        if creator.only_model is not None:
            raise ForbiddenError("a share link cannot make share links; ask its owner")
        ceiling = await self._expiry_of(creator)
        label = f"share {store}://{name}" + (f" version {version}" if version else "")
        return await self._issue(
            label,
            (str(Scope(Action.READ, store, name)),),
            expires_in,
            ceiling,
            share_of=f"{store}/{name}",
            version=version,
            parent_id=creator.token_id,
        )

    async def tokens(self) -> list[TokenRecord]:
        """Every stored token (secrets are not stored), oldest first.

        Listing also sweeps: tokens expired for over ``EXPIRED_KEPT`` and share links whose
        token is gone are deleted, so the auth store does not grow without end.
        """
        records = {}
        async for item in iter_keys(self.backend, TOKENS_PREFIX):
            record = await self._read(item.key.removeprefix(TOKENS_PREFIX))
            if record is not None:
                records[record.id] = record
        horizon = self._clock() - EXPIRED_KEPT
        for record in list(records.values()):
            orphan = record.parent_id is not None and record.parent_id not in records
            if orphan or record.expired(horizon):
                await delete_if_present(self.backend, _key(record.id))
                del records[record.id]
        return sorted(records.values(), key=lambda record: record.created_at)

    async def revoke(self, token_id: str) -> TokenRecord:
        """Revoke a token: on this replica at once, on the others within ``cache_seconds``."""
        record = await self._read(token_id) if is_token_id(token_id) else None
        if record is None or not await delete_if_present(self.backend, _key(token_id)):
            raise TokenNotFoundError(f"no token has the id {token_id!r}; see GET /v1/tokens")
        self._cache.pop(token_id, None)
        return record

    async def close(self) -> None:
        await self.backend.close()

    async def _issue(
        self,
        name: str,
        scopes: tuple[str, ...],
        expires_in: int | None,
        ceiling: datetime | None,
        **share: str | None,
    ) -> tuple[TokenRecord, str]:
        token_id, secret, text = new_token()
        now = self._clock()
        record = TokenRecord(
            id=token_id,
            name=name,
            scopes=scopes,
            created_at=now,
            expires_at=expiry(now, expires_in, ceiling),
            secret_sha256=secret_digest(secret),
            **share,
        )
        await put_bytes(self.backend, _key(token_id), record.to_bytes())
        return record, text

    async def _expiry_of(self, grant: Grant) -> datetime | None:
        if grant.token_id is None:
            return None
        record = await self._read(grant.token_id)
        return record.expires_at if record else None

    async def _valid_record(self, token_id: str) -> TokenRecord:
        record = await self._read(token_id)
        if record is None:
            raise UnauthorizedError(_UNKNOWN)
        if record.expired(self._clock()):
            raise UnauthorizedError(
                f"the token {record.name!r} expired at {record.expires_at:%Y-%m-%d %H:%M:%S} "
                f"UTC; ask for a new one"
            )
        return record

    async def _check_parents(self, record: TokenRecord) -> None:
        """A share link works only while the token that made it does."""
        if record.parent_id is None:
            return
        try:
            await self._valid_record(record.parent_id)
        except UnauthorizedError:
            raise UnauthorizedError(
                "this share link ended: the token that made it expired or was revoked"
            ) from None

    async def _read(self, token_id: str) -> TokenRecord | None:
        cached = self._cache.get(token_id)
        if cached is not None and time.monotonic() - cached[1] < self._cache_seconds:
            return cached[0]
        try:
            record: TokenRecord | None = TokenRecord.from_bytes(
                await read_all(self.backend, _key(token_id))
            )
        except NotFoundError:
            record = None
        if len(self._cache) >= MAX_CACHED:
            self._cache.clear()
        self._cache[token_id] = (record, time.monotonic())
        return record


_UNKNOWN = "the token is not valid here: it was revoked, or this server never issued it"


def _grant_of(record: TokenRecord) -> Grant:
    only_model = None
    if record.share_of is not None:
        store, _, name = record.share_of.partition("/")
        only_model = (store, name)
    return Grant(
        parse_scopes(record.scopes),
        token_id=record.id,
        only_model=only_model,
        only_version=record.version,
    )


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _key(token_id: str) -> str:
    return f"{TOKENS_PREFIX}{token_id}"


def open_token_registry(
    url: str, admin_token: str | None, *, timeout_seconds: float = 10.0
) -> TokenRegistry:
    """The registry over the auth store at ``url`` (``MODELSHELF_AUTH_STORE``).

    Raises StoreSettingError when the URL cannot be opened.
    """
    try:
        backend = open_backend(url, CallLimits(store="auth", timeout=timeout_seconds, threads=4))
    except Exception as error:
        raise StoreSettingError(
            f"MODELSHELF_AUTH_STORE cannot be opened: {error}; fix its backend URL"
        ) from error
    return TokenRegistry(backend, admin_token)
