"""A token's text, the hash it is stored as, and its stored record.

A token reads ``msk_ID_SECRET``: the id finds the record with one read, the 256-bit secret
is checked against its SHA-256. A secret that long needs no slow hash: nobody can guess it,
so the hash only keeps a leaked store from handing out working tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

TOKEN_PREFIX = "msk_"
_TOKEN_ID = r"[0-9a-f]{16}"
_TOKEN = re.compile(rf"msk_({_TOKEN_ID})_([A-Za-z0-9_-]{{43}})")
RECORD_SCHEMA = 1


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A token as stored: everything but its secret.

    Attributes:
        share_of: for a share link, the ``STORE/NAME`` it reads, and nothing else.
        version: for a share link of one version, that version's id.
        parent_id: the stored token that made this share link; revoking it ends the link.
    """

    id: str
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None
    secret_sha256: str
    share_of: str | None = None
    version: str | None = None
    parent_id: str | None = None

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def matches(self, secret: str) -> bool:
        return hmac.compare_digest(secret_digest(secret), self.secret_sha256)

    def to_bytes(self) -> bytes:
        fields = asdict(self)
        fields["created_at"] = self.created_at.isoformat()
        fields["expires_at"] = self.expires_at.isoformat() if self.expires_at else None
        return json.dumps({"schema": RECORD_SCHEMA, **fields}).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> TokenRecord:
        fields = json.loads(data)
        fields.pop("schema", None)
        fields["scopes"] = tuple(fields["scopes"])
        fields["created_at"] = datetime.fromisoformat(fields["created_at"])
        expires = fields["expires_at"]
        fields["expires_at"] = datetime.fromisoformat(expires) if expires else None
        return cls(**fields)


def new_token() -> tuple[str, str, str]:
    """A fresh ``(id, secret, token text)``."""
    token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    return token_id, secret, f"{TOKEN_PREFIX}{token_id}_{secret}"


def parse_token(text: str) -> tuple[str, str] | None:
    """``(id, secret)`` of a token's text; None if it is not shaped like a token."""
    match = _TOKEN.fullmatch(text)
    return (match.group(1), match.group(2)) if match else None


def is_token_id(text: str) -> bool:
    return re.fullmatch(_TOKEN_ID, text) is not None


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def expiry(now: datetime, expires_in: int | None, ceiling: datetime | None) -> datetime | None:
    """When a new token expires: after ``expires_in`` seconds, never after ``ceiling``."""
    wanted = now + timedelta(seconds=expires_in) if expires_in is not None else None
    if ceiling is None:
        return wanted
    return ceiling if wanted is None else min(wanted, ceiling)


def utc_now() -> datetime:
    return datetime.now(UTC)
