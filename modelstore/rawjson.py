"""Big JSON documents handled as raw slices of their bytes, never built whole (issue 8).

``msgspec.Raw`` values are zero-copy views into the document: a 60 MB model.json splits
into its members for a few bytes each, and only pieces of at most ``PIECE_BYTES`` are ever
decoded into Python objects at once. msgspec is stricter than ``json.loads`` (it refuses
lone surrogates, which JSON.stringify writes); callers fall back to ``json.loads`` when
``UnsplittableJsonError`` says so.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import msgspec

from modelshelf.modelstore.jsjson import is_js_float_text, number_corrections, python_json_length

Raw = msgspec.Raw
PIECE_BYTES = 1 << 20
_BACKSLASH = re.compile(rb"\\")
# Digits as "0", fractions and exponents as ".", the rest as " ": " " + 16 zeros starts
# an integer past 2**53, which JS writes as a float (a rare 16-digit float matches too).
_NUMBER_SHAPES = bytes(
    0x30 if chr(byte).isdigit() and byte < 0x80 else 0x2E if chr(byte) in ".eE" else 0x20
    for byte in range(256)
)
_LONG_INTEGER = b" " + b"0" * 16
_objects = msgspec.json.Decoder(dict[str, msgspec.Raw])
_arrays = msgspec.json.Decoder(list[msgspec.Raw])


class UnsplittableJsonError(ValueError):
    """msgspec cannot split this JSON; ``json.loads`` decides whether it is valid."""


def members(raw: bytes | Raw) -> dict[str, Raw]:
    """An object's members as raw values (a repeated key keeps its last value, as in JS)."""
    try:
        return _objects.decode(raw)
    except (msgspec.DecodeError, RecursionError) as error:
        raise UnsplittableJsonError(str(error)) from None


def items(raw: bytes | Raw) -> list[Raw]:
    """An array's items as raw values."""
    try:
        return _arrays.decode(raw)
    except (msgspec.DecodeError, RecursionError) as error:
        raise UnsplittableJsonError(str(error)) from None


def kind(raw: Raw) -> str:
    """The value's first character: ``{``, ``[``, ``"``, ``n``(ull), ``t``, ``f`` or a digit/-."""
    return chr(memoryview(raw)[0])


def decode(raw: bytes | Raw) -> Any:
    """A small raw value as Python objects, exactly as ``json.loads`` reads it."""
    return json.loads(bytes(raw))


def js_byte_length(raw: Raw) -> int:
    """UTF-8 length of ``JSON.stringify(JSON.parse(raw))``, decoding one piece at a time."""
    size = len(memoryview(raw))
    if size <= PIECE_BYTES:
        return _piece_length(bytes(raw))
    opening = kind(raw)
    if opening == "{":
        return _object_length(members(raw))
    if opening == "[":
        return array_length(items(raw))
    if opening == '"' and not _BACKSLASH.search(raw):
        return size  # a string without escapes is written as it is
    return _piece_length(bytes(raw))


def array_length(values: list[Raw]) -> int:
    """``js_byte_length`` of the array of ``values``."""
    inner = sum(_batch_length(batch) for batch in batches(values, PIECE_BYTES))
    return 2 + max(len(values) - 1, 0) + inner


def batches(values: list[Raw], limit: int = PIECE_BYTES) -> Iterator[list[Raw]]:
    """Consecutive runs of ``values`` of at most ``limit`` bytes (a bigger value alone)."""
    batch: list[Raw] = []
    size = 0
    for value in values:
        length = len(memoryview(value))
        if batch and size + length > limit:
            yield batch
            batch, size = [], 0
        batch.append(value)
        size += length
    if batch:
        yield batch


def decode_batch(batch: list[Raw]) -> tuple[list[Any], int]:
    """The values of ``batch`` as Python objects, and the sum of their JS lengths."""
    joined = b"[" + b",".join(batch) + b"]"
    values, length = _decode_measured(joined)
    return values, length - 2 - (len(batch) - 1)


def _batch_length(batch: list[Raw]) -> int:
    if len(batch) == 1 and len(memoryview(batch[0])) > PIECE_BYTES:
        return js_byte_length(batch[0])
    return decode_batch(batch)[1]


def _object_length(found: dict[str, Raw]) -> int:
    lengths = [python_json_length(key) + 1 + js_byte_length(value) for key, value in found.items()]
    return 2 + max(len(lengths) - 1, 0) + sum(lengths)


def _piece_length(piece: bytes) -> int:
    return _decode_measured(piece)[1]


def _decode_measured(piece: bytes) -> tuple[Any, int]:
    floats = _FloatWatch()
    value = json.loads(piece, parse_float=floats.parse)
    length = python_json_length(value)
    if floats.differ or _LONG_INTEGER in b" " + piece.translate(_NUMBER_SHAPES):
        length += number_corrections(value)
    return value, length


class _FloatWatch:
    """A ``parse_float`` hook noting whether any float is written differently by JS."""

    def __init__(self) -> None:
        self.differ = False

    def parse(self, text: str) -> float:
        number = float(text)
        if not self.differ and not is_js_float_text(number):
            self.differ = True
        return number
