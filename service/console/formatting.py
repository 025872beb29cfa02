"""Jinja filters: sizes, dates and numbers as people read them."""

from __future__ import annotations

import json
import math
from datetime import datetime

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def human_bytes(size: int | None) -> str:
    if size is None:
        return "–"
    value = float(size)
    for unit in _UNITS:
        if value < 1024 or unit == _UNITS[-1]:
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def short_date(iso: str) -> str:
    """``2026-12-02T07:01:02.123Z`` -> ``2026-12-02 07:01``; unparsable text as it is."""
    try:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    return moment.strftime("%Y-%m-%d %H:%M")


def number(value: float | int | None) -> str:
    """Integers with thin grouping; floats with 6 significant digits; None as a dash."""
    if value is None:
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    if math.isnan(value):
        return "NaN"
    return f"{value:.6g}"


def shape(dims: list[int] | None) -> str:
    return "[" + ", ".join(str(d) for d in dims) + "]" if dims is not None else "–"


def pretty_json(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


def shard_size(size: int) -> str:
    """A shard size as the view options name it: ``4 MiB``, ``512 KiB``, else bytes."""
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size:,} B"


def view_label(quantize: str | None, shard_bytes: int) -> str:
    """``float16, 4 MiB shards``; ``not quantized, 1 MiB shards`` for a reshard alone."""
    return f"{quantize or 'not quantized'}, {shard_size(shard_bytes)} shards"


def percent_of(part: int, whole: int) -> str:
    """``50%`` (``0.4%`` under 1%); a dash when there is no whole to compare with."""
    if whole <= 0:
        return "–"
    share = 100.0 * part / whole
    return f"{share:.1f}%" if share < 1 else f"{share:.0f}%"
