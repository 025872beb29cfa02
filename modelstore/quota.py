"""A store's quota under concurrent saves: what is stored, plus what saves in flight reserved.

A save reserves its declared size before it streams; the check and the reservation happen
together, so concurrent saves in one process never exceed the quota together (issue 8.5).
A save of unknown size grows its reservation chunk by chunk, one such save at a time:
several growing at once could each hold a part of the room and all fail. Bytes move from
reserved to used as each file commits; a failed save releases what it held. What is used is
listed from the backend whenever no save of this process is in flight (removals and other
processes show up then), and tracked by the commits in between.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from modelshelf.modelstore.errors import QuotaExceededError


class QuotaLedger:
    """The bytes one store holds and has promised, within one process."""

    def __init__(self, store: str, quota: int) -> None:
        self.store = store
        self.quota = quota
        self.used = 0  # refreshed from the backend at each reservation
        self.reserved = 0
        self.active = 0  # reservations not yet released
        self._lock = asyncio.Lock()
        self._unsized = asyncio.Lock()

    async def reserve(
        self, usage: Callable[[], Awaitable[int]], declared: int | None
    ) -> Reservation:
        """Reserve ``declared`` bytes (or none yet); QuotaExceededError if they cannot fit."""
        if declared is None:
            await self._unsized.acquire()
        try:
            async with self._lock:
                if self.active == 0:
                    # No save of ours is in flight, so no file commits during the listing:
                    # it is exact. Otherwise ``used`` is kept up to date by ``stored``.
                    self.used = await usage()
                wanted = declared or 0
                if self.used + self.reserved + wanted > self.quota:
                    free = self.quota - self.used - self.reserved
                    raise QuotaExceededError(self._message(free))
                self.reserved += wanted
                self.active += 1
        except BaseException:
            if declared is None:
                self._unsized.release()
            raise
        return Reservation(self, wanted, self._unsized if declared is None else None)

    async def forget(self, size: int) -> None:
        """``size`` stored bytes left the store outside a save (gc): stop counting them.

        With no save in flight the next reservation lists the backend anyway; with some,
        ``used`` is only tracked, so it drops here.
        """
        async with self._lock:  # never in the middle of a reservation's listing
            if self.active:
                self.used = max(0, self.used - size)

    def _message(self, available: int | None) -> str:
        room = f" ({max(available, 0)} bytes free)" if available is not None else ""
        return (
            f"store {self.store!r} would exceed its quota of {self.quota} bytes{room}; remove "
            f"old models or versions, or raise the store's quota"
        )


class Reservation:
    """One save's share of the ledger."""

    def __init__(
        self, ledger: QuotaLedger | None, held: int, turn: asyncio.Lock | None = None
    ) -> None:
        self._ledger = ledger
        self.held = held
        self.pending = 0  # bytes received but not yet committed to the backend
        self._turn = turn  # held by a save of unknown size until it ends

    def spend(self, size: int) -> None:
        """Account for bytes about to be stored; grows the reservation when it must."""
        self.pending += size
        ledger = self._ledger
        if ledger is None or self.pending <= self.held:
            return
        extra = self.pending - self.held
        if ledger.used + ledger.reserved + extra > ledger.quota:
            raise QuotaExceededError(ledger._message(None))
        self.held += extra
        ledger.reserved += extra

    def stored(self, size: int) -> None:
        """``size`` spent bytes are now in the backend: they count as used, not reserved."""
        self.pending -= size
        moved = min(size, self.held)
        self.held -= moved
        if self._ledger is not None:
            self._ledger.reserved -= moved
            self._ledger.used += size

    def release(self) -> None:
        """Give back what is still held (the save ended, either way); idempotent."""
        if self._ledger is not None:
            self._ledger.reserved -= self.held
            self._ledger.active -= 1
            self._ledger = None
        self.held = 0
        if self._turn is not None:
            self._turn.release()
            self._turn = None


def unlimited() -> Reservation:
    """The reservation of a save into a store without a quota: it only counts."""
    return Reservation(None, 0)
