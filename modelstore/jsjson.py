"""JSON exactly as JavaScript's ``JSON.stringify`` writes it (protocol doc §3).

TF.js reports model sizes as UTF-8 byte lengths of ``JSON.stringify`` output, so to
reproduce them we must write numbers, key order and escapes the way JS does.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

_MAX_SAFE_INTEGER = 2**53
_ARRAY_INDEX = re.compile(r"0|[1-9][0-9]*")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def js_stringify(value: Any) -> str:
    """Serialise parsed JSON as ``JSON.stringify(value)`` would, without whitespace."""
    if value is None or value is True or value is False:
        return json.dumps(value)
    if isinstance(value, str):
        return _js_string(value)
    if isinstance(value, int | float):
        return js_number(value)
    if isinstance(value, list):
        return "[" + ",".join(js_stringify(item) for item in value) + "]"
    if isinstance(value, dict):
        members = (f"{_js_string(key)}:{js_stringify(value[key])}" for key in _js_key_order(value))
        return "{" + ",".join(members) + "}"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def compact_json(value: Any) -> bytes:
    """UTF-8 JSON without whitespace; lone surrogates escaped (they have no UTF-8 form)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return _LONE_SURROGATE.sub(lambda match: f"\\u{ord(match.group()):04x}", text).encode()


def js_byte_length(value: Any) -> int:
    """UTF-8 length of ``JSON.stringify(value)``, as TF.js measures it."""
    return python_json_length(value) + number_corrections(value)


def python_json_length(value: Any) -> int:
    """UTF-8 length of compact ``json.dumps``: ``JSON.stringify``'s but for numbers.

    Key order does not change a length, Python escapes strings as JS does, and a lone
    surrogate (3 bytes here) costs the 6 bytes of its ``\\uXXXX`` escape in JS.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), check_circular=False)
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        surrogates = len(_LONE_SURROGATE.findall(text))
        return len(text.encode("utf-8", "surrogatepass")) + 3 * surrogates


def number_corrections(value: Any) -> int:
    """How many bytes longer JS writes the numbers of ``value`` than ``json.dumps`` does."""
    if isinstance(value, float):
        return len(js_number(value)) - len(_python_float(value))
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= _MAX_SAFE_INTEGER:
        return len(js_number(value)) - len(str(value))
    if isinstance(value, list):
        return sum(map(number_corrections, value))
    if isinstance(value, dict):
        return sum(map(number_corrections, value.values()))
    return 0


def is_js_float_text(number: float) -> bool:
    """Whether ``json.dumps`` writes ``number`` exactly as ``JSON.stringify`` does."""
    text = float.__repr__(number)
    return not ("e" in text or "n" in text or text.endswith(".0"))


def _python_float(number: float) -> str:
    """``json.dumps(number)``, without its per-call overhead."""
    if number != number:
        return "NaN"
    if number in (float("inf"), float("-inf")):
        return "Infinity" if number > 0 else "-Infinity"
    return float.__repr__(number)


def js_number(number: float) -> str:
    """Format a number as ECMAScript's Number::toString does."""
    if isinstance(number, int) and abs(number) < _MAX_SAFE_INTEGER:
        return str(number)
    try:
        number = float(number)
    except OverflowError:  # JSON.parse reads such an integer as Infinity
        return "null"
    if number != number or number in (float("inf"), float("-inf")):
        return "null"
    if number == 0:
        return "0"
    sign = "-" if number < 0 else ""
    digits, point = _shortest_digits(abs(number))
    return sign + _place_point(digits, point)


def _shortest_digits(number: float) -> tuple[str, int]:
    """Shortest round-trip digits, and ``n`` such that value = 0.DIGITS × 10^n."""
    _sign, digit_tuple, exponent = Decimal(repr(number)).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0") or "0"
    trimmed = len(digit_tuple) - len(digits)
    assert isinstance(exponent, int)
    return digits, exponent + trimmed + len(digits)


def _place_point(digits: str, point: int) -> str:
    count = len(digits)
    if count <= point <= 21:
        return digits + "0" * (point - count)
    if 0 < point <= 21:
        return f"{digits[:point]}.{digits[point:]}"
    if -6 < point <= 0:
        return "0." + "0" * -point + digits
    exponent = point - 1
    sign = "+" if exponent >= 0 else "-"
    mantissa = digits if count == 1 else f"{digits[0]}.{digits[1:]}"
    return f"{mantissa}e{sign}{abs(exponent)}"


def _js_string(text: str) -> str:
    quoted = json.dumps(text, ensure_ascii=False)
    # JSON.stringify (ES2019) escapes lone surrogates instead of emitting them.
    return _LONE_SURROGATE.sub(lambda match: f"\\u{ord(match.group()):04x}", quoted)


def _js_key_order(obj: dict[str, Any]) -> list[str]:
    """JS objects list array-index keys first, ascending, then the rest in insertion order."""
    indices = sorted((key for key in obj if _is_array_index(key)), key=int)
    return indices + [key for key in obj if not _is_array_index(key)]


def _is_array_index(key: str) -> bool:
    return bool(_ARRAY_INDEX.fullmatch(key)) and int(key) < 2**32 - 1
