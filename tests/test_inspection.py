"""The console's model inspection (issue 13): the overview of model.json, statistics of
stored tensors (equal to numpy's, streamed), and comparing two versions."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelshelf.backends import NotFoundError, open_backend
from modelshelf.modelstore import ModelStore, tensorstats
from modelshelf.modelstore.errors import (
    InvalidModelError,
    ModelNotFoundError,
    TensorNotFoundError,
    TensorNotNumericError,
)
from modelshelf.modelstore.inspection import LayerRow, ModelOverview, overview
from modelshelf.modelstore.tensorbytes import exact_chunks
from modelshelf.modelstore.tensorstats import (
    DEFAULT_BINS,
    TensorStats,
    compare_versions,
    tensor_stats,
)
from modelshelf.modelstore.tensorvalues import Histogram, Moments, decode
from tests.modelfactory import ModelFixture
from tests.storehelpers import save
from tests.support.spy_backend import SpyBackend

FIXTURES = Path(__file__).parent / "fixtures"


def _fixture(path: str) -> bytes:
    return (FIXTURES / path).read_bytes()


def _elements(document: dict[str, Any], *, optimizer: bool) -> int:
    return sum(
        math.prod(spec["shape"])
        for group in document["weightsManifest"]
        for spec in group["weights"]
        if (spec.get("group") == "optimizer") == optimizer
    )


def _layer(summary: ModelOverview, name: str) -> LayerRow:
    return next(row for row in summary.layers if row.name == name)


@pytest.mark.parametrize("fixture", ["cnn.json", "functional.json"])
def test_layer_params_add_up_to_the_weight_shapes(fixture: str) -> None:
    data = _fixture(f"layers_models/{fixture}")
    summary = overview(data)
    model_params = _elements(json.loads(data), optimizer=False)
    assert summary.kind == "layers"
    assert summary.total_params == model_params
    assert sum(row.params for row in summary.layers) == model_params


def test_a_sequential_model_with_a_nested_one_and_its_optimizer() -> None:
    summary = overview(_fixture("layers_models/cnn.json"))
    assert (summary.format, summary.converted_by) == ("layers-model", None)
    assert summary.generated_by == "TensorFlow.js tfjs-layers v4.22.0"
    assert summary.user_defined_metadata == {"fixture": "cnn"}
    assert [(row.class_name, row.name, row.container) for row in summary.layers] == [
        ("Conv2D", "conv", ""),
        ("MaxPooling2D", "pool", ""),
        ("Flatten", "flat", ""),
        ("Dense", "block_dense", "block"),
        ("BatchNormalization", "block_bn", "block"),
        ("Dropout", "drop", ""),
        ("Dense", "out", ""),
    ]
    conv = _layer(summary, "conv")
    assert conv.params == 3 * 3 * 1 * 8 + 8
    assert conv.detail == "filters 8, kernel [3, 3], shape [null, 28, 28, 1], activation relu"
    assert _layer(summary, "block_dense").params == 1352 * 16 + 16
    assert _layer(summary, "block_bn").params == 4 * 16  # gamma, beta, moving mean, variance
    assert _layer(summary, "out").detail == "units 10, activation softmax"
    assert _layer(summary, "drop").detail == "rate 0.25"
    assert _layer(summary, "flat").detail == ""
    optimizer = [row.name for row in summary.weights if row.optimizer]
    assert optimizer[0] == "iter" and len(optimizer) == 17
    assert summary.ops == []


def test_a_functional_model_lists_inputs_and_shared_towers() -> None:
    summary = overview(_fixture("layers_models/functional.json"))
    assert _layer(summary, "tokens").detail == "shape [null, 5]"
    assert _layer(summary, "emb").params == 50 * 4
    assert _layer(summary, "tower_dense").container == "tower"
    assert _layer(summary, "head").params == 26 + 1
    assert not any(row.optimizer for row in summary.weights)


def test_the_converters_model_config_wrapping_and_scoped_weight_names() -> None:
    cnn = json.loads(_fixture("layers_models/cnn.json"))
    for group in cnn["weightsManifest"]:
        for spec in group["weights"]:
            if spec["name"].startswith("block_"):
                spec["name"] = f"cnn/block/{spec['name']}"  # Python Keras scopes by container
    cnn["modelTopology"] = {"keras_version": "2.15.0", "model_config": cnn["modelTopology"]}
    del cnn["format"]
    summary = overview(json.dumps(cnn).encode())
    assert summary.kind == "layers"
    assert _layer(summary, "block_dense").params == 1352 * 16 + 16
    assert sum(row.params for row in summary.layers) == summary.total_params


def test_a_graph_model_counts_its_ops_and_describes_quantized_weights() -> None:
    summary = overview(_fixture("graph_model/model.json"))
    assert summary.kind == "graph"
    assert summary.converted_by == "TensorFlow.js Converter v4.22.0"
    assert summary.ops[0] == ("Const", 3)
    assert summary.ops == [  # most frequent first, ties by name
        ("Const", 3),
        ("AddV2", 1),
        ("Identity", 1),
        ("MatMul", 1),
        ("Mul", 1),
        ("Placeholder", 1),
    ]
    assert [(row.name, row.stored_bytes) for row in summary.weights] == [
        ("W", 12),
        ("b", 8),
        ("s", 8),
    ]
    assert summary.weights[0].quantization is not None
    assert summary.weights[0].quantization["dtype"] == "uint8"
    assert summary.total_params == 12 + 4 + 4
    assert summary.layers == []


def test_library_function_nodes_count_and_unknown_documents() -> None:
    graph = {
        "modelTopology": {
            "node": [{"name": "a", "op": "Const"}, {"name": "c", "op": "StatefulPartitionedCall"}],
            "library": {
                "function": [
                    {"nodeDef": [{"name": "x", "op": "Const"}, {"name": "y", "op": "Relu"}]}
                ]
            },
        },
        "weightsManifest": [
            {"paths": ["w.bin"], "weights": [{"name": "s", "shape": [2], "dtype": "string"}]}
        ],
    }
    summary = overview(json.dumps(graph).encode())
    assert summary.kind == "graph"
    assert summary.ops == [("Const", 2), ("Relu", 1), ("StatefulPartitionedCall", 1)]
    assert summary.weights[0].stored_bytes is None  # strings vary
    bare = overview(b'{"weightsManifest": []}')
    assert (bare.kind, bare.layers, bare.ops, bare.total_params) == ("unknown", [], [], 0)
    assert bare.format is None and bare.user_defined_metadata is None


def test_not_an_object_is_an_invalid_model() -> None:
    with pytest.raises(InvalidModelError):
        overview(b"[1, 2]")
    with pytest.raises(InvalidModelError):
        overview(b"{")


# -- statistics of stored tensors -----------------------------------------------------------


@dataclass
class Tensor:
    """One weight as a test builds it: its spec, stored bytes and the values TF.js decodes."""

    spec: dict[str, Any]
    data: bytes
    values: npt.NDArray[Any] | None  # None for strings


def plain(name: str, values: npt.ArrayLike, dtype: str) -> Tensor:
    stored = {"float32": "<f4", "int32": "<i4", "bool": "u1", "complex64": "<c8"}[dtype]
    array = np.asarray(values, dtype=stored)
    spec = {"name": name, "shape": list(array.shape), "dtype": dtype}
    return Tensor(spec, array.tobytes(), array)


def affine(name: str, codes: npt.ArrayLike, kind: str, scale: float, low: float) -> Tensor:
    """uint8/uint16 codes as the converter writes them, decoded as TF.js's decodeWeights."""
    array = np.asarray(codes, dtype="u1" if kind == "uint8" else "<u2")
    quantization = {"dtype": kind, "scale": scale, "min": low, "original_dtype": "float32"}
    spec = {"name": name, "shape": list(array.shape), "dtype": "float32"}
    values = (array.astype(np.float64) * scale + low).astype(np.float32)
    return Tensor({**spec, "quantization": quantization}, array.tobytes(), values)


def affine_int(name: str, codes: npt.ArrayLike, scale: float, low: float) -> Tensor:
    array = np.asarray(codes, dtype="u1")
    quantization = {"dtype": "uint8", "scale": scale, "min": low}
    spec = {"name": name, "shape": list(array.shape), "dtype": "int32"}
    values = np.floor(array.astype(np.float64) * scale + low + 0.5)  # JS Math.round
    return Tensor({**spec, "quantization": quantization}, array.tobytes(), values)


def half(name: str, values: npt.ArrayLike) -> Tensor:
    array = np.asarray(values, dtype="<f2")
    spec = {"name": name, "shape": list(array.shape), "dtype": "float32"}
    return Tensor({**spec, "quantization": {"dtype": "float16"}}, array.tobytes(), array)


def strings(name: str, items: list[bytes]) -> Tensor:
    data = b"".join(struct.pack("<I", len(item)) + item for item in items)
    return Tensor({"name": name, "shape": [len(items)], "dtype": "string"}, data, None)


def build(groups: list[list[Tensor]], cuts: dict[int, list[int]] | None = None) -> ModelFixture:
    """A converter-style model: each group's bytes cut into files at ``cuts[group]``."""
    manifest, files = [], {}
    for index, tensors in enumerate(groups):
        data = b"".join(tensor.data for tensor in tensors)
        bounds = [0, *(cuts or {}).get(index, []), len(data)]
        pieces = [data[low:high] for low, high in itertools.pairwise(bounds)]
        paths = [f"group{index + 1}-shard{i + 1}of{len(pieces)}.bin" for i in range(len(pieces))]
        files.update(zip(paths, pieces, strict=True))
        manifest.append({"paths": paths, "weights": [tensor.spec for tensor in tensors]})
    document = {"modelTopology": {"node": []}, "format": "graph-model", "weightsManifest": manifest}
    return ModelFixture(document, files)


def expected_stats(values: npt.NDArray[Any], bins: int | None = DEFAULT_BINS) -> dict[str, Any]:
    """What numpy says of the whole array at once (bins=None: no histogram)."""
    numbers = np.abs(values.astype(np.complex128)) if np.iscomplexobj(values) else values
    numbers = numbers.astype(np.float64).ravel()
    finite = numbers[np.isfinite(numbers)]
    result: dict[str, Any] = {
        "count": numbers.size,
        "nan": int(np.isnan(numbers).sum()),
        "pos_inf": int((numbers == np.inf).sum()),
        "neg_inf": int((numbers == -np.inf).sum()),
    }
    if finite.size == 0:
        return {**result, "min": None, "max": None, "mean": None, "std": None, "counts": []}
    counts, edges = (
        np.histogram(finite, bins, range=(finite.min(), finite.max()))
        if bins is not None
        else (np.empty(0), np.empty(0))
    )
    return {
        **result,
        "min": np.min(finite),
        "max": np.max(finite),
        "mean": np.mean(finite),
        "std": np.std(finite),
        "counts": counts.tolist(),
        "edges": edges.tolist(),
    }


def assert_matches(stats: TensorStats, values: npt.NDArray[Any], bins: int = DEFAULT_BINS) -> None:
    expected = expected_stats(values, bins)
    assert stats.shape == list(values.shape)
    for key in ("count", "nan", "pos_inf", "neg_inf", "min", "max", "counts"):
        assert getattr(stats, key) == expected[key], key
    if expected["mean"] is None:
        assert (stats.mean, stats.std, stats.edges) == (None, None, [])
        return
    assert stats.mean == pytest.approx(expected["mean"], rel=1e-12, abs=1e-12)
    assert stats.std == pytest.approx(expected["std"], rel=1e-9, abs=1e-12)
    assert stats.edges == expected["edges"]


RNG = np.random.default_rng(13)
SPECIALS = np.array([np.nan, np.inf, -np.inf, np.nan], dtype=np.float32)
F32 = np.concatenate([RNG.standard_normal(31).astype(np.float32), SPECIALS])
TENSORS = [
    plain("f32", F32.reshape(5, 7), "float32"),
    plain("i32", RNG.integers(-(2**31), 2**31 - 1, 40), "int32"),
    affine("q8", RNG.integers(0, 256, (6, 5)), "uint8", 0.0141176, -2.0047),
    affine("q16", RNG.integers(0, 65536, 21), "uint16", 2.2888e-05, 0.5),
    affine_int("qi8", [0, 1, 2, 3, 7, 255], 0.5, -3.0),  # halves round up, as Math.round
    half("f16", [0.5, -2.0, 65504.0, 6.0e-8, np.inf, np.nan, -np.inf, 1.0, 3.3]),
    plain("flags", [True, False, True, True], "bool"),
    plain("waves", [1 + 3j, -2 + 4j, 0j], "complex64"),
    plain("empty", np.zeros((0, 4)), "float32"),
    plain("constant", np.full(9, 2.5), "float32"),
    plain("scalar", 7.0, "float32"),
    plain("all_nan", [np.nan, np.nan, np.inf], "float32"),
]
# The second file starts inside f32 (byte 70 of its 140), and again inside q8.
CUTS = {0: [70, 140 + 160 + 10]}
STRING_GROUP = [
    strings("vocab", [b"a", "héllo".encode(), b""]),
    plain("between", RNG.standard_normal(6), "float32"),
    strings("labels", [b"x" * 40, b"yz"]),
    plain("tail", RNG.standard_normal(5), "float32"),
]


@pytest.fixture(params=["default_chunks", "tiny_chunks"])
def chunking(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Tiny chunks make every tensor span many of them (and byte reads split elements)."""
    if request.param == "tiny_chunks":
        monkeypatch.setattr(tensorstats, "CHUNK_ELEMENTS", 4)
    return str(request.param)


async def test_statistics_equal_numpys_for_every_dtype_and_quantization(
    model_store: ModelStore, chunking: str
) -> None:
    model = build([TENSORS, STRING_GROUP], {**CUTS, 1: [20]})
    version = await save(model_store, "stats", model)
    for tensor in [*TENSORS, *STRING_GROUP]:
        if tensor.values is None:
            continue
        stats = await tensor_stats(model_store, "stats", version.id, tensor.spec["name"])
        assert (stats.name, stats.dtype) == (tensor.spec["name"], tensor.spec["dtype"])
        assert_matches(stats, tensor.values)


async def test_edge_cases_read_as_numpy_reads_them() -> None:
    store = ModelStore("indexeddb", open_backend("memory://"))
    version = await save(store, "edges", build([TENSORS]))

    async def stats(name: str, bins: int = DEFAULT_BINS) -> TensorStats:
        return await tensor_stats(store, "edges", version.id, name, bins=bins)

    empty = await stats("empty")
    assert (empty.count, empty.min, empty.counts, empty.edges) == (0, None, [], [])
    constant = await stats("constant", bins=3)  # numpy widens a constant's range by 0.5
    assert (constant.min, constant.max, constant.std) == (2.5, 2.5, 0.0)
    assert (constant.edges, constant.counts) == ([2.0, 2.5 - 1 / 6, 2.5 + 1 / 6, 3.0], [0, 9, 0])
    nothing_finite = await stats("all_nan")
    assert (nothing_finite.nan, nothing_finite.pos_inf, nothing_finite.mean) == (2, 1, None)
    rounded = await stats("qi8")
    assert (rounded.min, rounded.max) == (-3.0, 125.0)  # -3 + 0.5 * 255 = 124.5 -> 125
    waves = await stats("waves")  # complex64 by magnitude
    assert (waves.min, waves.max) == (0.0, pytest.approx(math.hypot(2, 4)))
    f16 = await stats("f16")
    assert (f16.max, f16.nan, f16.pos_inf, f16.neg_inf) == (65504.0, 1, 1, 1)
    one_bin = await stats("i32", bins=1)
    assert one_bin.counts == [40]


async def test_refusals_unknown_tensors_strings_and_bins() -> None:
    store = ModelStore("indexeddb", open_backend("memory://"))
    version = await save(store, "refuse", build([STRING_GROUP]))
    with pytest.raises(TensorNotFoundError, match="no weight 'nope'") as missing:
        await tensor_stats(store, "refuse", version.id, "nope")
    assert isinstance(missing.value, NotFoundError)
    assert missing.value.code.status == 404
    with pytest.raises(TensorNotNumericError, match="holds strings") as strings_refused:
        await tensor_stats(store, "refuse", version.id, "vocab")
    assert strings_refused.value.code.status == 400
    with pytest.raises(ValueError, match="at least one bin"):
        await tensor_stats(store, "refuse", version.id, "tail", bins=0)
    with pytest.raises(ModelNotFoundError):
        await tensor_stats(store, "other", version.id, "tail")


async def test_one_tensors_statistics_read_only_its_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Bounded memory: ranged reads of the tensor's own bytes, one per pass and file."""
    spy = SpyBackend(open_backend("memory://"))
    store = ModelStore("indexeddb", spy)
    big = plain("big", RNG.standard_normal(1000), "float32")
    small = plain("small", RNG.standard_normal(10), "float32")
    after = plain("after", RNG.standard_normal(50), "float32")
    version = await save(store, "spy", build([[small, big, after]], {0: [2000]}))

    async def weight_reads(name: str) -> list[tuple[str, int, int | None]]:
        spy.reset()
        await tensor_stats(store, "spy", version.id, name)
        return [get for get in spy.gets if get[0].endswith(".bin")]

    file1, file2 = (f"spy/~v/{version.id}/group1-shard{i}of2.bin" for i in (1, 2))
    # One chunk holds it all: one pass, one read per file, of exactly its bytes.
    assert await weight_reads("big") == [(file1, 40, 2000), (file2, 0, 4040 - 2000)]
    assert await weight_reads("after") == [(file2, 4040 - 2000, 4240 - 2000)]
    monkeypatch.setattr(tensorstats, "CHUNK_ELEMENTS", 64)
    # Bigger than a chunk: two passes, each the same ranged reads; nothing else is read.
    reads = await weight_reads("big")
    assert reads == [(file1, 40, 2000), (file2, 0, 2040)] * 2
    chunk_sizes: list[int] = []
    monkeypatch.setattr(tensorstats, "as_numbers", _recording(chunk_sizes))
    await tensor_stats(store, "spy", version.id, "big")
    assert max(chunk_sizes) == 64 and sum(chunk_sizes) == 2 * 1000


async def test_a_tensor_after_the_last_string_is_found_from_the_groups_end() -> None:
    spy = SpyBackend(open_backend("memory://"))
    store = ModelStore("indexeddb", spy)
    version = await save(store, "strings", build([STRING_GROUP]))
    group = sum(len(tensor.data) for tensor in STRING_GROUP)
    spy.reset()
    await tensor_stats(store, "strings", version.id, "tail")
    weight_gets = [get[1:] for get in spy.gets if get[0].endswith(".bin")]
    assert weight_gets == [(group - 20, group)]  # no string byte read
    spy.reset()
    await tensor_stats(store, "strings", version.id, "between")  # walks "vocab" (19 bytes)
    weight_gets = [get[1:] for get in spy.gets if get[0].endswith(".bin")]
    assert weight_gets == [(0, group), (19, 19 + 24)]  # the walk stops reading early


def _recording(sizes: list[int]) -> Any:
    real = tensorstats.as_numbers

    def record(values: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
        sizes.append(values.size)
        return real(values)

    return record


# -- properties of the decoding and the accumulation ----------------------------------------

FLOATS = st.floats(width=32, allow_nan=True, allow_infinity=True)


@given(
    values=st.lists(FLOATS, max_size=200),
    chunk=st.integers(1, 50),
    bins=st.integers(1, 40),
)
@settings(max_examples=200, deadline=None)
def test_chunked_statistics_equal_whole_array_numpy(
    values: list[float], chunk: int, bins: int
) -> None:
    array = np.array(values, dtype=np.float32).astype(np.float64)
    moments = Moments()
    pieces = [array[i : i + chunk] for i in range(0, array.size, chunk)]
    for piece in pieces:
        moments.add(piece)
    expected = expected_stats(array, None)  # the histogram is checked below
    assert (moments.count, moments.nan, moments.pos_inf, moments.neg_inf) == (
        expected["count"],
        expected["nan"],
        expected["pos_inf"],
        expected["neg_inf"],
    )
    if expected["min"] is None:
        assert moments.finite == 0
        return
    assert (moments.minimum, moments.maximum) == (expected["min"], expected["max"])
    scale = max(abs(expected["min"]), abs(expected["max"]))
    assert moments.mean == pytest.approx(expected["mean"], rel=1e-9, abs=1e-12 * scale)
    assert moments.std == pytest.approx(expected["std"], rel=1e-7, abs=1e-9 * scale)
    histogram = Histogram(bins, moments.minimum, moments.maximum)
    for piece in pieces:
        histogram.add(piece)
    if histogram.bins < bins:  # as many bins as numpy can make over this range
        with pytest.raises(ValueError, match="Too many bins"):
            expected_stats(array, histogram.bins + 1)
    try:
        expected = expected_stats(array, histogram.bins)
    except ValueError:  # numpy cannot make any: one bin holds everything
        assert (histogram.bins, histogram.counts.tolist()) == (1, [moments.finite])
        return
    assert histogram.counts.tolist() == expected["counts"]
    assert histogram.edges == expected["edges"]


def test_a_range_of_a_few_subnormals_gets_fewer_bins() -> None:
    tiny = np.array([5e-324, 1e-323, 1.5e-323])
    histogram = Histogram(32, float(tiny.min()), float(tiny.max()))
    histogram.add(tiny)
    assert histogram.bins == 2
    assert histogram.counts.tolist() == np.histogram(tiny, 2)[0].tolist()
    huge = float(np.finfo(np.float32).max)  # huge ± 0.5 == huge: numpy bins nothing
    constant = Histogram(32, huge, huge)
    constant.add(np.full(4, huge))
    assert (constant.bins, constant.counts.tolist(), constant.edges) == (1, [4], [huge, huge])


def test_float16_decodes_every_bit_pattern_exactly() -> None:
    patterns = np.arange(1 << 16, dtype="<u2")
    decoded = decode(patterns.tobytes(), "float32", {"dtype": "float16"})
    expected = patterns.view("<f2").astype(np.float32)
    assert decoded.dtype == np.float32
    np.testing.assert_array_equal(decoded, expected)  # NaNs in the same places


@given(
    codes=st.lists(st.integers(0, 65535), max_size=50),
    scale=st.floats(1e-6, 10),
    low=st.floats(-1e3, 1e3),
)
def test_affine_dequantization_is_tfjs_arithmetic(
    codes: list[int], scale: float, low: float
) -> None:
    array = np.array(codes, dtype="<u2")
    quantization = {"dtype": "uint16", "scale": scale, "min": low}
    as_float = decode(array.tobytes(), "float32", quantization)
    # JS: Float32Array element = Number(q) * scale + min (a double), rounded once to float32.
    assert as_float.tolist() == [float(np.float32(q * scale + low)) for q in codes]
    as_int = decode(array.tobytes(), "int32", quantization)
    assert as_int.tolist() == [math.floor(q * scale + low + 0.5) for q in codes]


@given(
    data=st.binary(max_size=300),
    pieces=st.lists(st.integers(1, 40), max_size=20),
    size=st.integers(1, 64),
)
def test_exact_chunks_recut_any_stream(data: bytes, pieces: list[int], size: int) -> None:
    async def source() -> AsyncIterator[bytes]:
        offset = 0
        for piece in [*pieces, len(data)]:
            yield data[offset : offset + piece]
            offset += piece

    async def recut() -> list[bytes]:
        return [chunk async for chunk in exact_chunks(source(), size)]

    chunks = asyncio.run(recut())
    assert b"".join(chunks) == data
    assert all(len(chunk) == size for chunk in chunks[:-1])
    assert not chunks or 0 < len(chunks[-1]) <= size


# -- comparing two versions ---------------------------------------------------------------


async def test_compare_reports_added_removed_changed_and_unchanged(
    model_store: ModelStore, chunking: str
) -> None:
    same = RNG.standard_normal(10)
    before = [
        plain("same", same, "float32"),
        plain("moved", [1.0, 2.0, 3.0], "float32"),
        plain("reshaped", np.zeros((2, 3)), "float32"),
        plain("retyped", [1, 2], "int32"),
        plain("gone", [1.0], "float32"),
        plain("requantized", [0.5, -2.0, 1.0], "float32"),
        plain("from_zero", [0.0, 0.0], "float32"),
        plain("nan_kept", [1.0, np.nan, 3.0], "float32"),
        plain("nan_new", [1.0, 2.0, np.inf], "float32"),
        strings("words", [b"a", b"b"]),
        strings("names", [b"x", b"y"]),
    ]
    after = [
        plain("same", same, "float32"),
        plain("moved", [1.0, 2.5, 1.0], "float32"),
        plain("reshaped", np.zeros((3, 2)), "float32"),
        plain("retyped", [1.0, 2.0], "float32"),
        half("requantized", [0.5, -2.0, 1.0]),
        plain("from_zero", [0.0, 3.0], "float32"),
        plain("nan_kept", [1.0, np.nan, 4.0], "float32"),
        plain("nan_new", [np.nan, 2.0, np.inf], "float32"),
        strings("words", [b"a", b"b"]),
        strings("names", [b"x", b"z"]),
        plain("new", [1.0], "float32"),
    ]
    version_a = await save(model_store, "cmp", build([before[:5], before[5:]], {0: [30]}))
    version_b = await save(model_store, "cmp", build([after], {0: [17]}))
    changes = {
        change.name: change
        for change in await compare_versions(model_store, "cmp", version_a.id, version_b.id)
    }
    assert list(changes) == [tensor.spec["name"] for tensor in before] + ["new"]

    def summary(name: str) -> tuple[Any, ...]:
        change = changes[name]
        return (
            change.status,
            change.detail,
            change.max_abs_diff,
            change.relative_l2,
            change.nonfinite_diffs,
        )

    assert summary("same") == ("unchanged", "", 0.0, 0.0, 0)
    assert summary("moved") == ("changed", "", 2.0, pytest.approx(math.sqrt(4.25 / 14)), 0)
    assert summary("reshaped") == ("changed", "shape [2, 3] -> [3, 2]", None, None, None)
    assert summary("retyped") == ("changed", "dtype int32 -> float32", None, None, None)
    assert summary("gone") == ("removed", "", None, None, None)
    assert summary("new") == ("added", "", None, None, None)
    # Other bytes, the same values: changed, by nothing.
    assert summary("requantized") == ("changed", "quantization none -> float16", 0.0, 0.0, 0)
    assert summary("from_zero") == ("changed", "", 3.0, None, 0)  # ||a|| = 0: no ratio
    assert summary("nan_kept") == ("changed", "", 1.0, pytest.approx(1 / math.sqrt(10)), 0)
    assert summary("nan_new") == ("changed", "", 0.0, 0.0, 1)  # only a NaN appeared
    assert summary("words") == ("unchanged", "", None, None, None)
    assert summary("names") == ("changed", "", None, None, None)


async def test_a_version_compared_with_itself_is_unchanged() -> None:
    store = ModelStore("indexeddb", open_backend("memory://"))
    version = await save(store, "self", build([TENSORS, STRING_GROUP], CUTS))
    changes = await compare_versions(store, "self", version.id, version.id)
    assert {change.status for change in changes} == {"unchanged"}
    assert len(changes) == len(TENSORS) + len(STRING_GROUP)
