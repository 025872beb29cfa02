"""The one key validator every backend calls before touching its medium."""

from __future__ import annotations

from modelshelf.backends.errors import InvalidKeyError

MAX_KEY_BYTES = 1024  # S3's limit, the tightest of our media
MAX_SEGMENT_BYTES = 255  # NAME_MAX on every common file system


def validate_key(key: str) -> str:
    """Return ``key`` unchanged if it is a safe relative key, else raise InvalidKeyError."""
    _check(isinstance(key, str) and key != "", key, "a key must be a non-empty string")
    _check("\x00" not in key, key, "a key must not contain NUL")
    _check("\\" not in key, key, "a key must not contain a backslash")
    _check(not key.startswith("/"), key, "a key must be relative (no leading '/')")
    _check(len(key.encode("utf-8", "surrogatepass")) <= MAX_KEY_BYTES, key, "key too long")
    for segment in key.split("/"):
        validate_key_segment(segment, key)
    return key


def validate_key_segment(segment: str, key: str) -> None:
    _check(segment != "", key, "a key must not contain empty segments ('//' or a trailing '/')")
    _check(segment not in (".", ".."), key, "a key must not contain '.' or '..' segments")
    _check(
        len(segment.encode("utf-8", "surrogatepass")) <= MAX_SEGMENT_BYTES,
        key,
        f"a key segment must be at most {MAX_SEGMENT_BYTES} bytes",
    )
    _check(
        segment.isprintable() or _only_spaces_unprintable(segment),
        key,
        "a key must not contain control characters",
    )


def _only_spaces_unprintable(segment: str) -> bool:
    # str.isprintable() rejects every space but U+0020; non-ASCII spaces are fine in keys.
    return all(ch.isprintable() or (ch.isspace() and ord(ch) > 0x7F) for ch in segment)


def _check(condition: bool, key: str, reason: str) -> None:
    if not condition:
        raise InvalidKeyError(f"invalid key {key!r}: {reason}")
