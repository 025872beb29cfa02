"""Weight bytes as numbers, decoded as TF.js's ``decodeWeights`` does, and statistics that add
up chunk by chunk (issue 13). Pure numpy: nothing here reads a store.

Values are float64 for statistics: float32, float16 and int32 convert exactly. complex64
values count by magnitude (``|re + im·j|``); bool counts as 0 and 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

Values = npt.NDArray[np.float64]
_STORED = {
    "float32": "<f4",
    "int32": "<i4",
    "bool": "u1",
    "complex64": "<c8",
    "float16": "<f2",
    "uint16": "<u2",
    "uint8": "u1",
}


def decode(raw: bytes, dtype: str, quantization: dict[str, Any] | None) -> npt.NDArray[Any]:
    """The logical values of whole elements' bytes (§2.3): float32, int32, complex64 arrays.

    Affine quantization is ``q * scale + min`` in double precision, stored as float32 (or
    rounded half up into int32, as JS's ``Math.round``); float16 converts exactly.
    """
    stored = quantization["dtype"] if quantization else dtype
    codes = np.frombuffer(raw, dtype=_STORED[stored])
    if quantization is None or stored == "float16":
        return codes.astype(np.float32) if stored == "float16" else codes
    affine = codes.astype(np.float64) * float(quantization["scale"]) + float(quantization["min"])
    if dtype == "int32":
        return np.floor(affine + 0.5).astype(np.int64).astype(np.int32)
    return affine.astype(np.float32)


def as_numbers(values: npt.NDArray[Any]) -> Values:
    """float64 values for statistics: complex values by magnitude."""
    if np.iscomplexobj(values):
        return np.abs(values.astype(np.complex128))
    return values.astype(np.float64)


@dataclass(slots=True)
class Moments:
    """Count, extremes, mean and variance of finite values, plus NaN and ±Inf counts, merged
    chunk by chunk (Chan et al.'s pairwise update, in float64)."""

    count: int = 0
    finite: int = 0
    minimum: float = float("inf")
    maximum: float = float("-inf")
    mean: float = 0.0
    squares: float = 0.0  # sum of squared deviations from the mean
    nan: int = 0
    pos_inf: int = 0
    neg_inf: int = 0

    def add(self, values: Values) -> None:
        self.count += values.size
        self.nan += int(np.count_nonzero(np.isnan(values)))
        self.pos_inf += int(np.count_nonzero(values == np.inf))
        self.neg_inf += int(np.count_nonzero(values == -np.inf))
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            return
        self.minimum = min(self.minimum, float(finite.min()))
        self.maximum = max(self.maximum, float(finite.max()))
        mean = float(finite.mean())
        squares = float(np.square(finite - mean).sum())
        total = self.finite + finite.size
        delta = mean - self.mean
        self.mean += delta * finite.size / total
        self.squares += squares + delta * delta * self.finite * finite.size / total
        self.finite = total

    @property
    def std(self) -> float:
        """Population standard deviation (numpy's default, ``ddof=0``)."""
        return float(np.sqrt(self.squares / self.finite)) if self.finite else float("nan")


@dataclass(slots=True)
class Histogram:
    """Counts of finite values in equal bins over ``[low, high]``, as ``np.histogram`` with
    ``range=(low, high)`` bins them (a constant widens to ``[c - 0.5, c + 0.5]``).

    ``bins`` shrinks when the range is too narrow for that many distinct float64 edges (a
    range of a few subnormals), where numpy would refuse; a range numpy cannot bin at all (a
    constant near float32's largest value, where ``c ± 0.5 == c``) is one bin, ``[low, high]``.
    """

    bins: int
    low: float
    high: float
    counts: npt.NDArray[np.int64] = field(init=False)

    def __post_init__(self) -> None:
        while self.bins > 1 and self._edges() is None:
            self.bins -= 1
        self.counts = np.zeros(self.bins, dtype=np.int64)

    @property
    def edges(self) -> list[float]:
        edges = self._edges()
        return [self.low, self.high] if edges is None else [float(edge) for edge in edges]

    def add(self, values: Values) -> None:
        finite = values[np.isfinite(values)]
        if self._edges() is None:
            self.counts[0] += finite.size
            return
        counts, _edges = np.histogram(finite, self.bins, range=(self.low, self.high))
        self.counts += counts

    def _edges(self) -> Values | None:
        empty = np.empty(0, dtype=np.float64)
        try:
            return np.histogram_bin_edges(empty, self.bins, range=(self.low, self.high))
        except ValueError:  # "Too many bins for data range"
            return None


@dataclass(slots=True)
class Difference:
    """How far values ``b`` are from ``a``, chunk by chunk, over positions where both are
    finite; ``nonfinite`` counts positions where NaN or ±Inf on one side is not matched by the
    same on the other (NaN matches NaN)."""

    max_abs: float = 0.0
    squared: float = 0.0  # ||b - a||²
    reference: float = 0.0  # ||a||²
    nonfinite: int = 0

    def add(self, a: npt.NDArray[Any], b: npt.NDArray[Any]) -> None:
        a, b = _wide(a), _wide(b)
        both = np.isfinite(a) & np.isfinite(b)
        same = (a == b) | (np.isnan(a) & np.isnan(b))
        self.nonfinite += int(np.count_nonzero(~both & ~same))
        difference = np.abs(b[both] - a[both])
        if difference.size:
            self.max_abs = max(self.max_abs, float(difference.max()))
        self.squared += float(np.square(difference).sum())
        self.reference += float(np.square(np.abs(a[both])).sum())

    @property
    def relative_l2(self) -> float | None:
        """``||b - a|| / ||a||``; 0 when nothing differs, None when ``a`` is all zeros and ``b``
        is not (the ratio has no value)."""
        if self.squared == 0:
            return 0.0
        if self.reference == 0:
            return None
        return float(np.sqrt(self.squared / self.reference))


def _wide(values: npt.NDArray[Any]) -> npt.NDArray[Any]:
    if np.iscomplexobj(values):
        return values.astype(np.complex128)
    return values.astype(np.float64)
