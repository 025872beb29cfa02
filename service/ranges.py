"""Range requests (RFC 9110 §14) on weight files: one byte range, or the whole file.

A Range header the service does not honour is ignored, as RFC 9110 §14.2 allows, and the
answer is 200 with the whole file: a malformed header, a unit other than ``bytes``, more than
one range (no ``multipart/byteranges``), HEAD (range handling is defined for GET only), and
an ``If-Range`` that is not the file's strong ETag (a date never matches: weight URLs are
validated by ETag alone).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from modelshelf.schemas.errors import ErrorCode
from modelshelf.service.errors import HttpError

_RANGE_SPEC = re.compile(r"(\d*)-(\d*)", re.ASCII)
MAX_DIGITS = 19


@dataclass(frozen=True, slots=True)
class ByteRange:
    """The bytes ``[start, end)`` of a file of ``size`` bytes that a 206 answers."""

    start: int
    end: int
    size: int

    @property
    def content_range(self) -> str:
        return f"bytes {self.start}-{self.end - 1}/{self.size}"


def requested_range(
    method: str, headers: Mapping[str, str], etag: str, size: int
) -> ByteRange | None:
    """The one range to answer with 206; None to answer 200 with the whole file.

    Raises:
        HttpError: 416 ``range_not_satisfiable`` when the range starts at or past the end
            (or is an empty suffix), with ``Content-Range: bytes */SIZE``.
    """
    header = headers.get("range")
    if method != "GET" or header is None or not _if_range_holds(headers, etag):
        return None
    spec = _one_range_spec(header)
    if spec is None:
        return None
    first, last = spec
    if first is None:  # a suffix: the last ``last`` bytes
        return _suffix(last or 0, size)
    if first >= size:
        raise _not_satisfiable(size, f"the range starts at byte {first}")
    return ByteRange(first, size if last is None else min(last + 1, size), size)


def _if_range_holds(headers: Mapping[str, str], etag: str) -> bool:
    validator = headers.get("if-range")
    return validator is None or validator.strip() == etag  # strong comparison: no W/


def _one_range_spec(header: str) -> tuple[int | None, int | None] | None:
    """``(first, last)`` of a header with one valid byte range; None to ignore it."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes":
        return None
    match = _RANGE_SPEC.fullmatch(spec.strip())
    if match is None or match.group(1) == match.group(2) == "":
        return None  # also several ranges: the comma never matches
    first = _position(match.group(1)) if match.group(1) else None
    last = _position(match.group(2)) if match.group(2) else None
    if first is not None and last is not None and last < first:
        return None  # invalid, so the header is ignored (RFC 9110 §14.1.1)
    return first, last


def _position(digits: str) -> int:
    # Past any file's end, and never a number too long for int() (its 4300-digit limit).
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= MAX_DIGITS else 10**MAX_DIGITS


def _suffix(length: int, size: int) -> ByteRange | None:
    if length == 0:
        raise _not_satisfiable(size, "the range asks for the last 0 bytes")
    if size == 0:
        return None  # satisfiable, yet no 206 can say so: the whole, empty file
    return ByteRange(max(size - length, 0), size, size)


def _not_satisfiable(size: int, why: str) -> HttpError:
    if size:
        fix = f"the file has {size} bytes: ask for bytes 0 to {size - 1}, or send no Range"
    else:
        fix = "the file is empty: send no Range"
    return HttpError(
        ErrorCode.RANGE_NOT_SATISFIABLE,
        f"{why}, but {fix} header for the whole file",
        {"Content-Range": f"bytes */{size}"},
    )
