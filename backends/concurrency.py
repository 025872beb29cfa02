"""Blocking work of one backend: its own bounded threads, a deadline on every call.

Each backend gets its own pool, so a stuck medium (a locked SQLite file, a frozen S3
server) exhausts only its own threads and every other store keeps answering. A call that
misses its deadline raises UnavailableError; its thread may still be running, which is why
a resource a thread works on (a connection, a file, an HTTP body) is wrapped in a
``ThreadBound`` that closes it only once no thread uses it (issue 8.1: closing a SQLite
connection under a running query crashed the process).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from modelshelf.backends.buffers import BufferBudget
from modelshelf.backends.errors import StorageError, UnavailableError
from modelshelf.backends.readshares import ReadShares

T = TypeVar("T")
R = TypeVar("R")
DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_THREADS = 4


@dataclass(frozen=True, slots=True)
class CallLimits:
    """How a backend runs its blocking calls.

    Attributes:
        store: the store's name, for messages (``store 'indexeddb' did not answer ...``).
        timeout: seconds one call may take, queueing included; None waits forever.
        threads: the most blocking calls in flight at once for this backend.
        write_buffers: the budget its upload buffers (S3 parts, SQLite batches) take from,
            shared by every store of a process (by default a budget of its own).
        read_shares: the budget the chunks of its streams being read share, shared by every
            store of a process (by default one of its own).
    """

    store: str = "store"
    timeout: float | None = DEFAULT_TIMEOUT_SECONDS
    threads: int = DEFAULT_THREADS
    write_buffers: BufferBudget = field(default_factory=BufferBudget)
    read_shares: ReadShares = field(default_factory=ReadShares)


class BlockingCalls:
    """A backend's thread pool; ``run`` awaits one call with the backend's deadline."""

    def __init__(self, limits: CallLimits, kind: str) -> None:
        self.limits = limits
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=limits.threads, thread_name_prefix=f"{kind}-{limits.store}"
        )

    def start(self, function: Callable[..., T], *args: Any) -> concurrent.futures.Future[T]:
        """Begin a call without waiting: the future tells when its thread is done with it."""
        return self._executor.submit(function, *args)

    async def wait(self, future: concurrent.futures.Future[T], deadline: float | None = None) -> T:
        """The call's result; UnavailableError past the deadline (the thread may run on).

        ``deadline`` overrides the backend's, in seconds, for a call known to take longer.
        """
        seconds = deadline or self.limits.timeout
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), seconds)
        except TimeoutError:
            raise self._late(seconds) from None

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        return await self.wait(self.start(function, *args))

    @property
    def executor(self) -> concurrent.futures.Executor:
        """For libraries that take an executor (aiofiles); wrap their awaits in ``guarded``."""
        return self._executor

    async def guarded(self, call: Awaitable[T]) -> T:
        """Await a library's own thread hop with the backend's deadline."""
        try:
            return await asyncio.wait_for(call, self.limits.timeout)
        except TimeoutError:
            raise self._late(self.limits.timeout) from None

    def _late(self, seconds: float | None) -> UnavailableError:
        return UnavailableError(
            f"store {self.limits.store!r} did not answer within {seconds or 0:g} s; try again later"
        )

    def shutdown(self) -> None:
        """Start no more calls; threads stuck in a call finish on their own."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def drain(self) -> None:
        """Start no more calls, and wait for the running ones to return."""
        await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=True)


class ThreadBound(Generic[R]):
    """A blocking resource used by one thread at a time, closed only when none uses it.

    ``close_soon`` is synchronous and never waits, so it is safe in a ``finally`` of a
    cancelled task: if a call is still running, the close runs in that call's thread as
    soon as the call returns.
    """

    def __init__(self, calls: BlockingCalls, resource: R, close: Callable[[R], Any]) -> None:
        self._calls = calls
        self._resource = resource
        self._close = close
        self._busy: concurrent.futures.Future[Any] | None = None
        self.closed = False

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """``function(resource, *args)`` in a backend thread."""
        if self.closed:
            raise StorageError("the stream was already closed")
        self._busy = self._calls.start(function, self._resource, *args)
        return await self._calls.wait(self._busy)

    def close_soon(self) -> None:
        if self.closed:
            return
        self.closed = True
        busy, self._busy = self._busy, None
        if busy is None:
            self._close_quietly()
        else:  # runs at once if the call is over, else in its thread when it returns
            busy.add_done_callback(lambda _: self._close_quietly())

    def _close_quietly(self) -> None:
        try:
            self._close(self._resource)
        except Exception:  # closing is best effort; the resource is unusable either way
            return
