"""Quantizing float32 weights as tfjs-converter does (its ``quantization.py``), chunk by chunk.

A tensor is quantized in two passes: ``Extremes`` gathers its range over every chunk, then
``quantization_for`` settles the parameters and ``Quantization.encode`` turns each chunk into
codes. The formulas are the converter's, so TF.js dequantizes a view exactly as it
dequantizes converter output (protocol doc §2.3):

- float16: IEEE half precision, round to nearest even (``astype(float16)``).
- uint8 / uint16: ``scale = (max - min) / qmax`` in float64; when 0 lies in ``[min, max]``,
  ``min`` is nudged so that 0 has an exact code; codes are
  ``round((clip(x, min, max) - min) / scale)``, half to even. A constant tensor gets
  ``scale = 1`` and all codes 0.

Arithmetic is float64 throughout, as the converter's code computes under NumPy 2.

Where the converter would write codes that do not mean the tensor any more, the tensor is
left as it is, float32 (``quantization_for`` returns None, and says why in ``Extremes``):

- uint8 / uint16 of a tensor holding NaN or ±Inf: its range has no finite scale.
- float16 of a tensor with a finite value beyond float16's range (|x| >= 65520): it would
  become ±Inf. NaN and ±Inf themselves convert exactly, so they do not keep a tensor.
- An empty tensor: nothing to gain (the converter's ``min()`` of it raises).
Pure numpy: nothing here reads a store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

QuantizeDtype = Literal["float16", "uint8", "uint16"]
QUANTIZE_DTYPES: tuple[QuantizeDtype, ...] = ("float16", "uint8", "uint16")
CODE_BYTES = {"float16": 2, "uint8": 1, "uint16": 2}
_CODES: dict[str, np.dtype[Any]] = {
    "float16": np.dtype("<f2"),
    "uint8": np.dtype("u1"),
    "uint16": np.dtype("<u2"),
}
# The smallest magnitude float16 rounds to infinity: halfway between 65504 and 2**16.
FLOAT16_OVERFLOW = 65520.0
Float32s = npt.NDArray[np.float32]


@dataclass(slots=True)
class Extremes:
    """The range of a float32 tensor's values, gathered chunk by chunk."""

    count: int = 0
    minimum: float = float("inf")  # of finite values
    maximum: float = float("-inf")
    nonfinite: int = 0
    largest_finite: float = 0.0  # the largest finite magnitude

    def add(self, values: Float32s) -> None:
        self.count += values.size
        finite = np.isfinite(values)
        finite_count = int(np.count_nonzero(finite))
        self.nonfinite += values.size - finite_count
        if finite_count == 0:
            return
        kept = values if finite_count == values.size else values[finite]
        low, high = float(kept.min()), float(kept.max())
        self.minimum = min(self.minimum, low)
        self.maximum = max(self.maximum, high)
        self.largest_finite = max(self.largest_finite, abs(low), abs(high))


@dataclass(frozen=True, slots=True)
class Quantization:
    """How one tensor is quantized: its code dtype and, for uint8/uint16, min and scale."""

    dtype: QuantizeDtype
    minimum: float = 0.0
    scale: float = 1.0
    constant: bool = False  # min == max: every code is 0
    _range: tuple[float, float] = field(default=(0.0, 0.0), repr=False)

    @property
    def code_bytes(self) -> int:
        return CODE_BYTES[self.dtype]

    def manifest_entry(self) -> dict[str, Any]:
        """The ``quantization`` object of the weight spec, keys as the converter writes them."""
        if self.dtype == "float16":
            return {"dtype": "float16", "original_dtype": "float32"}
        return {
            "dtype": self.dtype,
            "min": self.minimum,
            "scale": self.scale,
            "original_dtype": "float32",
        }

    def encode(self, values: Float32s) -> bytes:
        """The codes of a chunk of the tensor's values, little-endian."""
        codes = _CODES[self.dtype]
        if self.dtype == "float16":
            return bytes(values.astype(codes).tobytes())
        if self.constant:
            return bytes(values.size * codes.itemsize)
        low, high = self._range
        wide = values.astype(np.float64)
        scaled = np.round((wide.clip(low, high) - self.minimum) / self.scale)
        return bytes(scaled.astype(codes).tobytes())


def quantization_for(dtype: QuantizeDtype, extremes: Extremes) -> Quantization | None:
    """The converter's parameters for a tensor of this range; None to leave it float32."""
    if extremes.count == 0:
        return None
    if dtype == "float16":
        if extremes.largest_finite >= FLOAT16_OVERFLOW:
            return None
        return Quantization("float16")
    if extremes.nonfinite:
        return None
    low, high = extremes.minimum, extremes.maximum
    if low == high:
        return Quantization(dtype, minimum=low, scale=1.0, constant=True, _range=(low, high))
    code_max = float(np.iinfo(np.uint8 if dtype == "uint8" else np.uint16).max)
    scale = (high - low) / code_max
    if low <= 0 <= high:
        zero_point = float(np.round((0 - low) / scale))
        nudged_min = -zero_point * scale
        nudged_max = code_max * scale + nudged_min
    else:
        nudged_min, nudged_max = low, high
    return Quantization(dtype, minimum=nudged_min, scale=scale, _range=(nudged_min, nudged_max))


def float32_values(raw: bytes | memoryview) -> Float32s:
    """Little-endian float32 bytes as an array, without a copy."""
    return np.frombuffer(raw, dtype="<f4")
