"""Conditional saves (``If-Match``, ``If-None-Match: *``) decided atomically at commit time.

The current version is the newest committed one, so "save only if V is current" cannot be one
conditional put of one key. Instead a conditional save claims the right to commit: a
create-only put of a small claim key just before its version object is written.

- ``If-Match: V`` claims ``~models/NAME/~V.next``: of conditional saves racing to succeed V,
  one creates the claim and commits; the others are refused with 412.
- ``If-None-Match: *`` claims ``~models/NAME/~create``: of saves racing to create the model,
  one wins.

After claiming, the winner checks again that its condition still holds (an unconditional save
may have committed meanwhile) and gives the claim up if not. A claim whose claimant never
committed (its process was killed in the one put between the claim and the commit) goes
stale after ``STALE_SECONDS`` and is taken over, with a replace-if-etag put, so two takers
cannot both win.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable

from modelshelf.backends import Backend, CreateOnly, NotFoundError, ReplaceIfEtag
from modelshelf.backends import PreconditionFailedError as PutRefused
from modelshelf.backends.ops import delete_if_present, put_bytes
from modelshelf.modelstore.errors import PreconditionFailedError

STALE_SECONDS = 120.0


class CommitClaim:
    """The claim one conditional save takes just before it commits."""

    def __init__(
        self,
        backend: Backend,
        key: str,
        *,
        refused: str,
        still_holds: Callable[[], Awaitable[bool]],
        committed: Callable[[str], Awaitable[bool]],
    ) -> None:
        self.backend = backend
        self.key = key
        self._refused = refused  # the 412's message
        self._still_holds = still_holds
        self._committed = committed
        self._held = False

    async def take(self, version_id: str) -> None:
        """Claim for ``version_id``; raises PreconditionFailedError when another save won."""
        data = json.dumps({"version": version_id, "claimed_at": time.time()}).encode()
        try:
            await put_bytes(self.backend, self.key, data, CreateOnly())
        except PutRefused:
            await self._take_over_if_stale(data)
        self._held = True
        if not await self._still_holds():
            await self.release()
            raise PreconditionFailedError(self._refused)

    async def release(self) -> None:
        """Give the claim up (the save failed, or its condition no longer holds)."""
        if self._held:
            self._held = False
            await delete_if_present(self.backend, self.key)

    async def _take_over_if_stale(self, data: bytes) -> None:
        try:
            stream = await self.backend.get(self.key)
        except NotFoundError:  # released meanwhile: try once more from scratch
            await self._put(data, CreateOnly())
            return
        try:
            claim = json.loads(b"".join([chunk async for chunk in stream]))
        finally:
            await stream.aclose()
        fresh = time.time() - float(claim["claimed_at"]) < STALE_SECONDS
        if fresh or await self._committed(claim["version"]):
            raise PreconditionFailedError(self._refused)
        await self._put(data, ReplaceIfEtag(stream.info.etag))

    async def _put(self, data: bytes, mode: CreateOnly | ReplaceIfEtag) -> None:
        try:
            await put_bytes(self.backend, self.key, data, mode)
        except PutRefused:
            raise PreconditionFailedError(self._refused) from None
