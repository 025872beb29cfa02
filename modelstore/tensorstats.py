"""Statistics of one stored weight tensor, and what changed between two versions (issue 13).

Both stream: a tensor is read by ranged reads of its own bytes, ``CHUNK_ELEMENTS`` elements
at a time, so memory stays bounded however big it is. Statistics take two passes over a
tensor bigger than one chunk (extremes and moments first, then the histogram over them).
"""

from __future__ import annotations

import math
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

from modelshelf.modelstore.errors import TensorNotNumericError
from modelshelf.modelstore.inspection import WeightRow
from modelshelf.modelstore.manifest import ELEMENT_BYTES
from modelshelf.modelstore.store import ModelStore
from modelshelf.modelstore.tensorbytes import WeightLayout
from modelshelf.modelstore.tensorvalues import (
    Difference,
    Histogram,
    Moments,
    Values,
    as_numbers,
    decode,
)

# 512 Ki elements: at most 4 MiB stored (complex64), and 4 MiB as float64.
CHUNK_ELEMENTS = 1 << 19
DEFAULT_BINS = 32
ChangeStatus = Literal["added", "removed", "changed", "unchanged"]


@dataclass(frozen=True, slots=True)
class TensorStats:
    """Statistics of one tensor's values, dequantized; complex64 by magnitude.

    ``count`` counts every element; ``min`` to ``std`` (population) and the histogram cover
    the finite ones, and are None (the histogram empty) when there is none.
    """

    name: str
    dtype: str
    shape: list[int]
    count: int
    min: float | None
    max: float | None
    mean: float | None
    std: float | None
    nan: int
    pos_inf: int
    neg_inf: int
    edges: list[float]
    counts: list[int]


@dataclass(frozen=True, slots=True)
class TensorChange:
    """One tensor in a comparison of versions a and b.

    ``max_abs_diff`` and ``relative_l2`` (``||b - a|| / ||a||``, None when ``a`` is all zeros
    and ``b`` is not) cover positions where both values are finite; ``nonfinite_diffs``
    counts the positions where NaN or ±Inf is not matched on the other side. All three are
    None unless both versions hold numbers of the same shape and dtype.
    """

    name: str
    status: ChangeStatus
    detail: str
    max_abs_diff: float | None
    relative_l2: float | None
    nonfinite_diffs: int | None


async def tensor_stats(
    store: ModelStore, model_name: str, version_id: str, tensor: str, *, bins: int = DEFAULT_BINS
) -> TensorStats:
    """Statistics and a histogram of one weight tensor of a version, read in chunks.

    Raises:
        Model/VersionNotFoundError, VersionFilesMissingError: no such version, or it lost files.
        TensorNotFoundError: the version has no weight named ``tensor``.
        TensorNotNumericError: the tensor holds strings.
        ValueError: ``bins`` is not positive.
    """
    if bins < 1:
        raise ValueError(f"a histogram needs at least one bin, not {bins}")
    layout = await WeightLayout.open(store, model_name, version_id)
    row = layout.find(tensor)
    if row.dtype == "string":
        raise TensorNotNumericError(
            f"weight {tensor!r} holds strings: statistics and histograms need numbers"
        )
    moments, held = Moments(), []
    async for values in _values(layout, row):
        moments.add(values)
        held = [values] if moments.count == values.size else []  # one chunk: no second pass
    if moments.finite == 0:
        return _stats(row, moments, None)
    histogram = Histogram(bins, moments.minimum, moments.maximum)
    for values in held:
        histogram.add(values)
    if not held:
        async for values in _values(layout, row):
            histogram.add(values)
    return _stats(row, moments, histogram)


async def compare_versions(
    store: ModelStore, model_name: str, version_a: str, version_b: str
) -> list[TensorChange]:
    """Which weights were added, removed or changed from version a to b, and by how much.

    Tensors of one name with the same shape and dtype are read side by side in chunks: a
    change of stored bytes (also of quantization alone) makes them ``changed``, with the
    difference of their dequantized values. Order: a's weights, then those only b has.

    Raises Model/VersionNotFoundError and VersionFilesMissingError.
    """
    layout_a = await WeightLayout.open(store, model_name, version_a)
    layout_b = await WeightLayout.open(store, model_name, version_b)
    in_b = {row.name: row for row in layout_b.rows}
    changes = []
    for row in layout_a.rows:
        other = in_b.pop(row.name, None)
        if other is None:
            changes.append(TensorChange(row.name, "removed", "", None, None, None))
        else:
            changes.append(await _compare(layout_a, row, layout_b, other))
    changes += [TensorChange(name, "added", "", None, None, None) for name in in_b]
    return changes


async def _compare(
    layout_a: WeightLayout, a: WeightRow, layout_b: WeightLayout, b: WeightRow
) -> TensorChange:
    if a.shape != b.shape or a.dtype != b.dtype:
        return TensorChange(a.name, "changed", _layout_change(a, b), None, None, None)
    if a.dtype == "string":
        same = await _same_bytes(layout_a, a, layout_b, b)
        return TensorChange(a.name, "unchanged" if same else "changed", "", None, None, None)
    difference, same = Difference(), a.quantization == b.quantization
    chunks = zip_chunks(
        layout_a.chunks(a.name, await layout_a.extent(a.name), _chunk(a)),
        layout_b.chunks(b.name, await layout_b.extent(b.name), _chunk(b)),
    )
    async for raw_a, raw_b in chunks:
        same = same and raw_a == raw_b
        difference.add(
            decode(raw_a, a.dtype, a.quantization), decode(raw_b, b.dtype, b.quantization)
        )
    status: ChangeStatus = "unchanged" if same else "changed"
    detail = _quantization_change(a, b)
    return TensorChange(
        a.name, status, detail, difference.max_abs, difference.relative_l2, difference.nonfinite
    )


async def _same_bytes(
    layout_a: WeightLayout, a: WeightRow, layout_b: WeightLayout, b: WeightRow
) -> bool:
    extent_a, extent_b = await layout_a.extent(a.name), await layout_b.extent(b.name)
    if extent_a.size != extent_b.size:
        return False
    size = CHUNK_ELEMENTS * 8
    pairs = zip_chunks(
        layout_a.chunks(a.name, extent_a, size), layout_b.chunks(b.name, extent_b, size)
    )
    async for raw_a, raw_b in pairs:
        if raw_a != raw_b:
            await pairs.aclose()
            return False
    return True


async def zip_chunks(
    first: AsyncIterator[bytes], second: AsyncIterator[bytes]
) -> AsyncGenerator[tuple[bytes, bytes]]:
    """Pairs of chunks of two streams cut into the same number of pieces."""
    try:
        async for chunk in first:
            yield chunk, await anext(second)
    finally:
        for stream in (first, second):
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()


async def _values(layout: WeightLayout, row: WeightRow) -> AsyncIterator[Values]:
    extent = await layout.extent(row.name)
    async for raw in layout.chunks(row.name, extent, _chunk(row)):
        yield as_numbers(decode(raw, row.dtype, row.quantization))


def _chunk(row: WeightRow) -> int:
    """Bytes of ``CHUNK_ELEMENTS`` elements as stored."""
    stored = row.quantization["dtype"] if row.quantization else row.dtype
    return CHUNK_ELEMENTS * ELEMENT_BYTES[stored]


def _stats(row: WeightRow, moments: Moments, histogram: Histogram | None) -> TensorStats:
    finite = histogram is not None
    return TensorStats(
        name=row.name,
        dtype=row.dtype,
        shape=row.shape,
        count=math.prod(row.shape),
        min=moments.minimum if finite else None,
        max=moments.maximum if finite else None,
        mean=moments.mean if finite else None,
        std=moments.std if finite else None,
        nan=moments.nan,
        pos_inf=moments.pos_inf,
        neg_inf=moments.neg_inf,
        edges=histogram.edges if histogram else [],
        counts=[int(count) for count in histogram.counts] if histogram else [],
    )


def _layout_change(a: WeightRow, b: WeightRow) -> str:
    parts = []
    if a.shape != b.shape:
        parts.append(f"shape {a.shape} -> {b.shape}")
    if a.dtype != b.dtype:
        parts.append(f"dtype {a.dtype} -> {b.dtype}")
    return ", ".join(parts)


def _quantization_change(a: WeightRow, b: WeightRow) -> str:
    before, after = _stored_as(a.quantization), _stored_as(b.quantization)
    if before != after:
        return f"quantization {before} -> {after}"
    return "" if a.quantization == b.quantization else f"{after} quantization parameters changed"


def _stored_as(quantization: dict[str, Any] | None) -> str:
    return str(quantization["dtype"]) if quantization else "none"
