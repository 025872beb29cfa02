"""The byte range of a ranged ``get``: one check every backend calls, as keys are checked.

A range is half-open, ``[start, end)``, as in obstore's ``get_range``; ``end=None`` reads to
the value's end, and an ``end`` past it stops there, as a slice does. ``start=0, end=None``
is the whole value, which every value has, even an empty one. Any other range must start
inside the value.
"""

from __future__ import annotations

from modelshelf.backends.errors import InvalidRangeError


def validate_range(start: int, end: int | None) -> bool:
    """Check a range before any I/O; True if it asks for less than the whole value.

    Raises:
        InvalidRangeError: ``start`` is negative, or ``end`` is not after ``start``.
    """
    if start < 0 or (end is not None and end <= start):
        raise InvalidRangeError(f"the byte range [{start}, {end}) reads nothing")
    return start > 0 or end is not None


def resolve_range(size: int, start: int, end: int | None) -> tuple[int, int]:
    """The bytes ``[start, stop)`` a get reads from a value of ``size`` bytes.

    Raises:
        InvalidRangeError: a range other than the whole value starts at or past its end.
    """
    if validate_range(start, end) and start >= size:
        raise InvalidRangeError(f"the byte range starts at {start}, past a {size}-byte value")
    return start, size if end is None else min(end, size)
