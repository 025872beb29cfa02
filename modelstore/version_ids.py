"""Version ids: unique, and sorting as strings sorts them by creation time."""

from __future__ import annotations

import re
import secrets
import threading
from datetime import UTC, datetime, timedelta

_PATTERN = re.compile(r"\d{8}T\d{12}Z-[0-9a-f]{8}")
_lock = threading.Lock()
_last = datetime.min.replace(tzinfo=UTC)


def new_version_id(now: datetime | None = None) -> str:
    """``20261126T003136123456Z-1a2b3c4d``: UTC time to the microsecond, then 32 random bits."""
    global _last
    with _lock:
        moment = max(now or datetime.now(UTC), _last + timedelta(microseconds=1))
        _last = moment
    return f"{moment:%Y%m%dT%H%M%S%f}Z-{secrets.token_hex(4)}"


def is_version_id(text: str) -> bool:
    return bool(_PATTERN.fullmatch(text))


def version_time(version_id: str) -> datetime:
    """When the save that made ``version_id`` began (UTC), read from the id itself."""
    return datetime.strptime(version_id[:22], "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC)


def iso_date(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:mm:ss.sssZ``, as JavaScript's ``toISOString`` writes it."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )
