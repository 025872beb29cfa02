"""Failed attempts per client address, in a sliding minute: the brake on guessing tokens."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

from modelshelf.access.errors import TooManyAttemptsError

WINDOW_SECONDS = 60.0
MAX_FAILURES = 20
MAX_CLIENTS = 100_000  # beyond this many addresses, the oldest are forgotten first


class FailedAttempts:
    """More than ``limit`` failures in ``window`` seconds from one address locks it out.

    Counted per process: with several workers, each keeps its own count.
    """

    def __init__(
        self,
        limit: int = MAX_FAILURES,
        window: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def check(self, client: str) -> None:
        """Raise TooManyAttemptsError with a Retry-After if ``client`` is locked out."""
        failures = self._recent(client)
        if len(failures) <= self.limit:
            return
        retry_after = math.ceil(failures[-self.limit - 1] + self.window - self._clock())
        raise TooManyAttemptsError(
            f"more than {self.limit} failed attempts from {client} within "
            f"{self.window:.0f} s; retry after {retry_after} s with a valid token",
            max(retry_after, 1),
        )

    def record_failure(self, client: str) -> None:
        if client not in self._failures and len(self._failures) >= MAX_CLIENTS:
            del self._failures[next(iter(self._failures))]
        self._failures.setdefault(client, deque()).append(self._clock())

    def _recent(self, client: str) -> deque[float]:
        failures = self._failures.get(client)
        if failures is None:
            return deque()
        horizon = self._clock() - self.window
        while failures and failures[0] <= horizon:
            failures.popleft()
        if not failures:
            del self._failures[client]
        return failures
