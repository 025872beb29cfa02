"""The weight byte format as numpy arrays: ``tf.io.encodeWeights`` / ``tf.io.decodeWeights``.

Layout and dequantisation follow protocol doc §2.3; shards are one logical stream (§11).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeGuard

import numpy as np
import numpy.typing as npt

__all__ = ["WeightData", "decode_weights", "encode_weights"]

STRING_LENGTH_BYTES: Final = 4
_INT32_RANGE: Final = (-(2**31), 2**31 - 1)
_MAX_STRING_BYTES: Final = 2**32 - 1

Buffer = bytes | bytearray | memoryview
WeightData = Buffer | Sequence[Buffer]
"""One buffer, or a list of buffers (weight files) read as their concatenation."""

# Logical dtype -> how its values are laid out in the stream (little-endian, §2.3).
_WIRE: Final[dict[str, np.dtype[Any]]] = {
    "float32": np.dtype("<f4"),
    "int32": np.dtype("<i4"),
    "bool": np.dtype("u1"),
    "complex64": np.dtype("<c8"),
}
_NATIVE: Final[dict[str, np.dtype[Any]]] = {
    "float32": np.dtype(np.float32),
    "int32": np.dtype(np.int32),
    "complex64": np.dtype(np.complex64),
}
_QUANTIZED: Final[dict[str, np.dtype[Any]]] = {
    "uint8": np.dtype("u1"),
    "uint16": np.dtype("<u2"),
    "float16": np.dtype("<f2"),
}
# Item sizes numpy converts to float32/complex64 (float128/complex256 are refused).
_FLOAT_SIZES: Final = {"f": (2, 4, 8), "c": (8, 16)}
_DTYPES: Final = ("float32", "int32", "bool", "string", "complex64")


# --- encoding -------------------------------------------------------------------------------


def encode_weights(tensors: Mapping[str, npt.ArrayLike]) -> tuple[list[dict[str, Any]], bytes]:
    """Encode named arrays the way ``tf.io.encodeWeights`` does.

    Dtypes map to TF.js's five: float16/float32/float64 -> ``float32`` (as the converter
    does), signed and unsigned integers -> ``int32``, bool -> ``bool`` (one byte, 0 or 1),
    complex64/complex128 -> ``complex64`` (interleaved real/imaginary float32), and arrays of
    ``str``/``bytes`` (numpy ``object``, ``U`` or ``S`` dtype, or plain lists) -> ``string``
    (u32 little-endian byte length, then the UTF-8 bytes; ``bytes`` elements are written
    raw). Note that numpy's ``S`` dtype has already dropped trailing NUL bytes; use an
    ``object`` array or a list to keep them. Values are written row-major, little-endian.

    Args:
        tensors: Weight name to array (or anything ``numpy.asarray`` accepts), in the order
            the bytes are written.

    Returns:
        The weight specs (``name``, ``shape``, ``dtype``) in the mapping's order, and the
        concatenated weight bytes.

    Raises:
        TypeError: A dtype TF.js cannot hold (float128, datetime, structured, ...), or a
            string tensor holding something that is neither ``str`` nor ``bytes`` (which is
            also what a ragged nested list becomes).
        ValueError: Values that do not fit the TF.js dtype (integers outside int32, finite
            floats that overflow float32), strings that are not encodable as UTF-8 or
            longer than 4 GiB.
    """
    specs: list[dict[str, Any]] = []
    parts: list[Buffer] = []
    for name, value in tensors.items():
        array = _as_array(value)
        dtype, data = _encode_tensor(name, array)
        specs.append({"name": name, "shape": [int(d) for d in array.shape], "dtype": dtype})
        parts.append(data)
    return specs, b"".join(parts)


def _as_array(value: npt.ArrayLike) -> npt.NDArray[Any]:
    if isinstance(value, np.ndarray):
        return value
    try:
        array = np.asarray(value)
        # numpy's U/S dtypes would coerce numbers to text and strip trailing NUL bytes.
        if array.dtype.kind not in "US":
            return array
    except ValueError:  # ragged, or str mixed with non-ASCII bytes
        pass
    return np.array(value, dtype=object)


def _encode_tensor(name: str, array: npt.NDArray[Any]) -> tuple[str, Buffer]:
    kind = array.dtype.kind
    if kind in "OUS":
        return "string", _encode_strings(name, array)
    if kind == "b":
        return "bool", _c_order(array, np.dtype("?"))
    if kind in "iu":
        _check_int32_range(name, array)
        return "int32", _c_order(array, _WIRE["int32"])
    if array.dtype.itemsize in _FLOAT_SIZES.get(kind, ()):
        dtype = "float32" if kind == "f" else "complex64"
        return dtype, _narrowed(name, array, _WIRE[dtype])
    raise TypeError(
        f"weight {name!r} has dtype {array.dtype}, which TF.js cannot hold; convert it to "
        "float32, int32, bool, complex64 or str first"
    )


def _c_order(array: npt.NDArray[Any], wire: np.dtype[Any]) -> Buffer:
    """The array's bytes in row-major order; no copy when they already are."""
    return _raw_bytes(array.astype(wire, order="C", copy=False))


def _raw_bytes(array: npt.NDArray[Any]) -> Buffer:
    return array.data.cast("B") if array.size else b""  # cast() refuses zero-size views


def _check_int32_range(name: str, array: npt.NDArray[Any]) -> None:
    if array.size == 0 or np.can_cast(array.dtype, np.int32):
        return
    low, high = array.min(), array.max()
    if low < _INT32_RANGE[0] or high > _INT32_RANGE[1]:
        raise ValueError(
            f"weight {name!r} ({array.dtype}) has values from {low} to {high}, outside the "
            "int32 range TF.js uses; clip or rescale them, or store them as float32"
        )


def _narrowed(name: str, array: npt.NDArray[Any], wire: np.dtype[Any]) -> Buffer:
    """float64/complex128 -> float32/complex64, refusing finite values that overflow."""
    with np.errstate(over="ignore"):
        narrow = array.astype(wire, order="C", copy=False)
    if narrow.dtype.itemsize < array.dtype.itemsize and _overflowed(array, narrow):
        raise ValueError(
            f"weight {name!r} has finite {array.dtype} values beyond float32's range "
            "(about 3.4e38); scale or clip them before encoding"
        )
    return _raw_bytes(narrow)


def _overflowed(wide: npt.NDArray[Any], narrow: npt.NDArray[Any]) -> bool:
    wide_inf = np.isinf(wide.real) | np.isinf(wide.imag)
    narrow_inf = np.isinf(narrow.real) | np.isinf(narrow.imag)
    return bool(np.any(narrow_inf & ~wide_inf))


def _encode_strings(name: str, array: npt.NDArray[Any]) -> bytes:
    parts: list[bytes] = []
    for index, element in enumerate(array.flat):  # .flat is row-major whatever the layout
        raw = _string_bytes(name, index, element)
        parts += (len(raw).to_bytes(STRING_LENGTH_BYTES, "little"), raw)
    return b"".join(parts)


def _string_bytes(name: str, index: int, element: object) -> bytes:
    if isinstance(element, bytes):
        raw = bytes(element)
    elif isinstance(element, str):
        try:
            raw = element.encode("utf-8")
        except UnicodeEncodeError as error:
            raise ValueError(
                f"string {index} of weight {name!r} cannot be encoded as UTF-8 ({error.reason}); "
                "remove lone surrogates or pass the bytes instead"
            ) from None
    else:
        raise TypeError(
            f"element {index} of string weight {name!r} is of type {type(element).__name__}; "
            "string tensors hold only str or bytes elements (give numbers a numeric dtype, "
            "and make nested lists rectangular)"
        )
    if len(raw) > _MAX_STRING_BYTES:
        raise ValueError(f"string {index} of weight {name!r} is longer than 4 GiB")
    return raw


# --- decoding -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Quantization:
    dtype: str
    min: float
    scale: float


@dataclass(frozen=True)
class _Spec:
    name: str
    shape: tuple[int, ...]
    dtype: str
    quantization: _Quantization | None

    @property
    def size(self) -> int:
        return math.prod(self.shape)


def decode_weights(
    data: WeightData, weight_specs: Sequence[Mapping[str, object]], *, strict: bool = False
) -> dict[str, npt.NDArray[Any]]:
    """Decode weight bytes into arrays the way ``tf.io.decodeWeights`` does.

    The result holds ``float32``, ``int32``, ``bool``, ``complex64`` or, for ``string``
    weights, ``object`` arrays of ``str``. A string whose bytes are not valid UTF-8 stays
    ``bytes`` (TF.js keeps every string as ``Uint8Array`` bytes and only decodes when the
    values are read, turning invalid sequences into U+FFFD). Quantised entries are
    dequantised as TF.js does (§2.3): uint8/uint16 to float32 as ``q * scale + min`` in
    double precision rounded to float32; to int32 as JS ``Math.round`` (halves round up)
    of the same, wrapped like an ``Int32Array`` store; float16 converted exactly.

    Every array is a C-contiguous, writable copy that shares no memory with ``data``, so
    the buffers may be reused or freed afterwards. Bytes are copied once, straight into the
    result; a tensor that straddles two buffers is gathered into a buffer of its own, which
    then becomes the result without a further copy.

    Where this differs from TF.js: buffers are always read as their exact concatenation
    (TF.js 4.6+ decodes zeros when the last buffer is larger than the first, §11); bool
    bytes other than 0 read as True (TF.js keeps the raw byte); ``"quantization": null``
    counts as absent (TF.js fails). As in TF.js, a later duplicate name replaces an earlier.

    Args:
        data: The weight bytes: one buffer, or a list of buffers (weight files, in manifest
            order) that together form the stream.
        weight_specs: The ``WeightsManifestEntry`` mappings (``name``, ``shape``, ``dtype``,
            optional ``quantization``), all groups' entries joined in manifest order.
        strict: Also refuse bytes left over after the last weight, which TF.js ignores.

    Returns:
        Weight name to array, in spec order.

    Raises:
        ValueError: A malformed spec (unknown dtype or quantization, negative dimension,
            missing ``min``/``scale``, float16 for a non-float32 weight), data too short for
            a weight (the message names it), or, with ``strict``, extra trailing bytes.
        TypeError: ``data`` holds something that is not a bytes-like buffer.
    """
    specs = [_parse_spec(index, entry) for index, entry in enumerate(weight_specs)]
    reader = _StreamReader(_buffers(data))
    tensors = {spec.name: _decode_tensor(reader, spec) for spec in specs}
    if strict and reader.remaining:
        raise ValueError(
            f"the weight data has {reader.remaining} bytes after the last weight (the specs "
            f"describe {reader.position} of its {reader.total} bytes); remove the extra bytes, "
            "or pass strict=False to ignore them as TF.js does"
        )
    return tensors


def _buffers(data: WeightData) -> list[memoryview]:
    shards = [data] if isinstance(data, bytes | bytearray | memoryview) else list(data)
    try:
        return [memoryview(shard).cast("B") for shard in shards]
    except TypeError as error:
        raise TypeError(f"weight data must be bytes-like buffers: {error}") from None


class _StreamReader:
    """Reads the concatenation of the buffers, copying only where a read spans two."""

    def __init__(self, buffers: list[memoryview]) -> None:
        self._buffers = [buffer for buffer in buffers if len(buffer)]
        self._index = 0
        self._offset = 0
        self.position = 0
        self.total = sum(len(buffer) for buffer in self._buffers)

    @property
    def remaining(self) -> int:
        return self.total - self.position

    def take(self, size: int, what: str) -> tuple[memoryview, bool]:
        """The next ``size`` bytes, and whether they are a fresh copy the caller may keep."""
        if size > self.remaining:
            raise ValueError(
                f"the weight data is too short for {what}: it needs {size} bytes from byte "
                f"{self.position}, but the data ends at byte {self.total}; pass every weight "
                "file, in manifest order"
            )
        if size == 0:
            return memoryview(bytearray()), True
        head = self._buffers[self._index][self._offset :]
        if len(head) >= size:
            self._skip(size)
            return head[:size], False
        return memoryview(self._gather(size)), True

    def _gather(self, size: int) -> bytearray:
        gathered = bytearray(size)
        filled = 0
        while filled < size:
            head = self._buffers[self._index][self._offset :]
            count = min(len(head), size - filled)
            gathered[filled : filled + count] = head[:count]
            filled += count
            self._skip(count)
        return gathered

    def _skip(self, count: int) -> None:
        self._offset += count
        self.position += count
        if self._offset == len(self._buffers[self._index]):
            self._index += 1
            self._offset = 0


def _decode_tensor(reader: _StreamReader, spec: _Spec) -> npt.NDArray[Any]:
    if spec.quantization is not None:
        return _dequantize(reader, spec, spec.quantization).reshape(spec.shape)
    if spec.dtype == "string":
        return _decode_strings(reader, spec).reshape(spec.shape)
    wire = _WIRE[spec.dtype]
    data, owned = reader.take(spec.size * wire.itemsize, f"weight {spec.name!r}")
    values = np.frombuffer(data, dtype=wire)
    if spec.dtype == "bool":
        nonzero: npt.NDArray[np.bool_] = values != 0
        return nonzero.reshape(spec.shape)
    # A fresh gathered buffer is adopted as it is; a slice of the caller's buffer is copied.
    return values.astype(_NATIVE[spec.dtype], copy=not owned).reshape(spec.shape)


def _decode_strings(reader: _StreamReader, spec: _Spec) -> npt.NDArray[Any]:
    strings = np.empty(spec.size, dtype=object)
    for index in range(spec.size):
        what = f"string {index} of weight {spec.name!r}"
        length, _ = reader.take(STRING_LENGTH_BYTES, what)
        raw, _ = reader.take(int.from_bytes(length, "little"), what)
        strings[index] = _text_or_bytes(raw)
    return strings


def _text_or_bytes(raw: memoryview) -> str | bytes:
    try:
        return str(raw, "utf-8")
    except UnicodeDecodeError:
        return bytes(raw)


def _dequantize(reader: _StreamReader, spec: _Spec, quant: _Quantization) -> npt.NDArray[Any]:
    stored_dtype = _QUANTIZED[quant.dtype]
    data, _ = reader.take(spec.size * stored_dtype.itemsize, f"weight {spec.name!r}")
    stored = np.frombuffer(data, dtype=stored_dtype)
    if quant.dtype == "float16":
        return stored.astype(np.float32)  # exact, subnormals and infinities included
    with np.errstate(all="ignore"):  # JS yields inf/NaN silently for extreme scale or min
        affine = stored.astype(np.float64) * quant.scale + quant.min
        if spec.dtype == "float32":
            return affine.astype(np.float32)
        return _int32_array_store(_js_math_round(affine))


def _js_math_round(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """JS ``Math.round``: ties go up (toward +inf), unlike numpy's round-half-to-even.

    ``x - floor(x)`` is exact in binary floating point, where ``floor(x + 0.5)`` is not.
    """
    floor = np.floor(values)
    return floor + (values - floor >= 0.5)


def _int32_array_store(values: npt.NDArray[np.float64]) -> npt.NDArray[np.int32]:
    """What storing numbers into an ``Int32Array`` keeps: NaN/inf -> 0, else modulo 2**32."""
    finite = np.where(np.isfinite(values), values, 0.0)
    return np.mod(finite, 2.0**32).astype(np.uint32).view(np.int32)


# --- spec parsing ---------------------------------------------------------------------------


def _parse_spec(index: int, entry: Mapping[str, object]) -> _Spec:
    name = entry.get("name")
    if not isinstance(name, str):
        raise ValueError(f"weight spec {index} has no string 'name'")
    dtype = entry.get("dtype")
    if not isinstance(dtype, str) or dtype not in _DTYPES:
        raise ValueError(
            f"weight {name!r} has dtype {dtype!r}; TF.js weight dtypes are " + ", ".join(_DTYPES)
        )
    shape = _parse_shape(name, entry.get("shape"))
    quantization = entry.get("quantization")
    if quantization is None:
        return _Spec(name, shape, dtype, None)
    return _Spec(name, shape, dtype, _parse_quantization(name, dtype, quantization))


def _parse_shape(name: str, shape: object) -> tuple[int, ...]:
    if not isinstance(shape, Sequence) or isinstance(shape, str):
        raise ValueError(f"weight {name!r} has shape {shape!r}; a shape is a list of ints")
    if not all(_is_int(d) and int(d) >= 0 for d in shape):
        raise ValueError(f"weight {name!r} has shape {shape!r}; dimensions are ints >= 0")
    return tuple(int(d) for d in shape)


def _parse_quantization(name: str, dtype: str, quantization: object) -> _Quantization:
    if not isinstance(quantization, Mapping):
        raise ValueError(f"weight {name!r} has quantization {quantization!r}; expected an object")
    stored = quantization.get("dtype")
    if stored not in _QUANTIZED:
        raise ValueError(
            f"weight {name!r} has quantization dtype {stored!r}; supported quantization dtypes "
            "are 'uint8', 'uint16' and 'float16'"
        )
    if stored == "float16":
        return _float16_quantization(name, dtype)
    return _affine_quantization(name, dtype, str(stored), quantization)


def _float16_quantization(name: str, dtype: str) -> _Quantization:
    if dtype != "float32":
        raise ValueError(
            f"weight {name!r} is quantized with float16, which only supports float32 "
            f"weights, not {dtype}"
        )
    return _Quantization("float16", 0.0, 1.0)


def _affine_quantization(
    name: str, dtype: str, stored: str, quantization: Mapping[Any, object]
) -> _Quantization:
    if dtype not in ("float32", "int32"):
        raise ValueError(
            f"weight {name!r} is quantized with {stored}, which supports float32 and int32 "
            f"weights only, not {dtype}"
        )
    low, scale = quantization.get("min"), quantization.get("scale")
    if not (_is_number(low) and _is_number(scale)):
        raise ValueError(
            f"weight {name!r} with quantization {stored} needs numeric 'min' and 'scale' "
            f"(got min={low!r}, scale={scale!r})"
        )
    return _Quantization(stored, float(low), float(scale))


def _is_int(value: object) -> TypeGuard[int | np.integer[Any]]:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _is_number(value: object) -> TypeGuard[int | float | np.integer[Any] | np.floating[Any]]:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
