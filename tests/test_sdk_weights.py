"""The SDK's weight codec against numpy round trips and against the real TF.js 4.22.0 codec."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from modelshelf._weights import decode_weights, encode_weights
from tests.support.tfjs import tfjs

Arrays = dict[str, npt.NDArray[Any]]


def sample_tensors() -> Arrays:
    """One tensor of every kind TF.js holds, with the awkward values of each."""
    specials = [0.0, -0.0, np.inf, -np.inf, np.nan, 1.5, -1e-40, 3.4028235e38, 1e-45, 0.1]
    return {
        "float32/specials": np.array(specials, dtype=np.float32),
        "float32/cube": (np.arange(24, dtype=np.float32) / 7).reshape(2, 3, 4),
        "int32": np.array([[-(2**31), -1, 0], [1, 2**31 - 1, 12345]], dtype=np.int32),
        "bool": np.array([[True, False, True]]),
        "complex64": np.array([1 + 3j, 2 + 4j, complex(-0.0, np.inf)], dtype=np.complex64),
        "string": np.array([["a", "héllo", ""], ["日本語", "🙂", "x" * 300]], dtype=object),
        "scalar": np.array(2.5, dtype=np.float32),
        "int_scalar": np.array(-7, dtype=np.int32),
        "string_scalar": np.array("only", dtype=object),
        "empty": np.zeros((0, 4), dtype=np.float32),
        "empty_strings": np.empty((3, 0), dtype=object),
        "after_empties": np.array([9, 8], dtype=np.int32),
    }


def assert_identical(actual: npt.NDArray[Any], expected: npt.NDArray[Any]) -> None:
    """Same dtype, shape and values; floats bit for bit (NaN payloads aside)."""
    assert actual.dtype == expected.dtype
    assert actual.shape == expected.shape
    if expected.dtype.kind in "fc":
        actual_bits, expected_bits = float32_bits(actual), float32_bits(expected)
        assert np.array_equal(np.isnan(actual_bits[0]), np.isnan(expected_bits[0]))
        assert np.array_equal(actual_bits[1], expected_bits[1])
    else:
        assert actual.tolist() == expected.tolist()


def float32_bits(array: npt.NDArray[Any]) -> tuple[npt.NDArray[Any], npt.NDArray[np.uint32]]:
    """The float32 components and their bit patterns, NaNs all set to one pattern."""
    components = np.ascontiguousarray(array).view(np.float32)
    bits = components.view(np.uint32).copy()
    bits[np.isnan(components)] = 0x7FC00000
    return components, bits


def assert_all_identical(actual: Mapping[str, npt.NDArray[Any]], expected: Arrays) -> None:
    assert list(actual) == list(expected)
    for name, array in expected.items():
        assert_identical(actual[name], array)


# --- numpy round trips ----------------------------------------------------------------------


@pytest.mark.parametrize("name", list(sample_tensors()))
def test_round_trip_of_each_kind(name: str) -> None:
    tensor = {name: sample_tensors()[name]}
    specs, data = encode_weights(tensor)
    assert specs == [{"name": name, "shape": list(tensor[name].shape), "dtype": specs[0]["dtype"]}]
    assert_all_identical(decode_weights(data, specs, strict=True), tensor)


def test_round_trip_of_everything_together() -> None:
    tensors = sample_tensors()
    specs, data = encode_weights(tensors)
    assert [spec["dtype"] for spec in specs] == [
        "float32", "float32", "int32", "bool", "complex64", "string",
        "float32", "int32", "string", "float32", "string", "int32",
    ]  # fmt: skip
    assert_all_identical(decode_weights(data, specs, strict=True), tensors)


def test_layout_matches_the_protocol_examples() -> None:
    specs, data = encode_weights(
        {
            "s": ["a", "héllo", ""],
            "c": np.array([1 + 3j, 2 + 4j], dtype=np.complex64),
            "b": [True, False],
        }
    )
    strings = bytes.fromhex("01000000 61 06000000 68c3a96c6c6f 00000000")
    assert data == strings + np.array([1, 3, 2, 4], dtype="<f4").tobytes() + b"\x01\x00"
    assert [spec["dtype"] for spec in specs] == ["string", "complex64", "bool"]


def test_non_contiguous_and_big_endian_arrays_are_written_row_major_little_endian() -> None:
    matrix = np.arange(12, dtype=np.float32).reshape(3, 4)
    _, transposed = encode_weights({"t": matrix.T})
    _, strided = encode_weights({"s": matrix[:, ::2]})
    _, big_endian = encode_weights({"b": matrix.astype(">f4")})
    assert transposed == np.ascontiguousarray(matrix.T).astype("<f4").tobytes()
    assert strided == np.ascontiguousarray(matrix[:, ::2]).astype("<f4").tobytes()
    assert big_endian == matrix.astype("<f4").tobytes()


@pytest.mark.parametrize(
    ("value", "dtype", "expected"),
    [
        (np.array([0.1, -1e-300, 1e30]), "float32", np.array([0.1, -1e-300, 1e30], np.float32)),
        (np.array([65504, 2**-24], np.float16), "float32", np.array([65504, 2**-24], np.float32)),
        (np.array([-128, 127], np.int8), "int32", np.array([-128, 127], np.int32)),
        (np.array([0, 65535], np.uint16), "int32", np.array([0, 65535], np.int32)),
        (np.array([-(2**31), 2**31 - 1]), "int32", np.array([-(2**31), 2**31 - 1], np.int32)),
        (np.array([2**31 - 1], np.uint64), "int32", np.array([2**31 - 1], np.int32)),
        (np.array([1 + 2j]), "complex64", np.array([1 + 2j], np.complex64)),
        (3.0, "float32", np.array(3.0, np.float32)),
        (5, "int32", np.array(5, np.int32)),
        (True, "bool", np.array(True)),
        ("text", "string", np.array("text", dtype=object)),
        (np.array(["ab", "ü"]), "string", np.array(["ab", "ü"], dtype=object)),
        (np.array([b"ab", b"c"]), "string", np.array(["ab", "c"], dtype=object)),
        ([[1.5, 2.5]], "float32", np.array([[1.5, 2.5]], np.float32)),
    ],
)
def test_dtypes_are_coerced_like_the_converter(
    value: Any, dtype: str, expected: npt.NDArray[Any]
) -> None:
    specs, data = encode_weights({"w": value})
    assert specs[0]["dtype"] == dtype
    assert_identical(decode_weights(data, specs)["w"], expected)


def test_bytes_elements_are_written_raw_and_invalid_utf8_decodes_to_bytes() -> None:
    strings: list[str | bytes] = [b"a\x00\x00", b"\xff\xfe", "é", b"\xc3\xa9"]
    specs, data = encode_weights({"s": strings})
    assert data == bytes.fromhex("03000000 610000 02000000 fffe 02000000 c3a9 02000000 c3a9")
    assert decode_weights(data, specs)["s"].tolist() == ["a\x00\x00", b"\xff\xfe", "é", "é"]


# --- decoding details -----------------------------------------------------------------------


def test_decoded_arrays_are_writable_copies() -> None:
    tensors = {"f": np.arange(6, dtype=np.float32), "i": np.arange(3, dtype=np.int32)}
    specs, data = encode_weights(tensors)
    buffer = bytearray(data)
    shards = [bytearray(data[:10]), bytearray(data[10:])]  # "f" straddles the two
    for decoded in (decode_weights(buffer, specs), decode_weights(shards, specs)):
        buffer[:] = bytes(len(buffer))
        for shard in shards:
            shard[:] = bytes(len(shard))
        assert_all_identical(decoded, tensors)
        for array in decoded.values():
            assert array.flags.writeable and array.flags.c_contiguous
            array += 1


def test_every_split_into_shards_decodes_the_same() -> None:
    tensors = sample_tensors()
    specs, data = encode_weights(tensors)
    shards: list[bytes | bytearray | memoryview]
    for cut in range(len(data) + 1):
        shards = [data[:cut], memoryview(data)[cut:]]
        assert_all_identical(decode_weights(shards, specs, strict=True), tensors)
    for first, second in [(1, 2), (3, 4), (5, 200), (40, 41), (100, 101)]:
        shards = [data[:first], bytearray(data[first:second]), b"", data[second:]]
        assert_all_identical(decode_weights(shards, specs, strict=True), tensors)


def test_extra_trailing_bytes_are_ignored_unless_strict() -> None:
    specs, data = encode_weights({"w": np.ones(2, np.float32)})
    assert decode_weights(data + b"junk", specs)["w"].tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match=r"4 bytes after the last weight.*strict=False"):
        decode_weights([data, b"junk"], specs, strict=True)


def test_quantization_null_counts_as_absent() -> None:
    spec = {"name": "w", "shape": [1], "dtype": "float32", "quantization": None, "group": None}
    assert decode_weights(np.float32(2).tobytes(), [spec])["w"].tolist() == [2.0]


def quantized(name: str, dtype: str, stored: npt.NDArray[Any], **quantization: Any) -> Any:
    """A quantized spec for ``stored`` (a 1-D uint8/uint16/float16-bits array) and its bytes."""
    stored_dtype = quantization.pop("stored_dtype", stored.dtype.name)
    spec = {
        "name": name,
        "shape": [len(stored)],
        "dtype": dtype,
        "quantization": {"dtype": stored_dtype, **quantization},
    }
    return spec, stored.astype(stored.dtype.newbyteorder("<")).tobytes()


def quantized_cases() -> tuple[list[dict[str, Any]], bytes]:
    """uint8/uint16 to float32 and int32 (with many x.5 ties), and float16."""
    u8, u16 = np.arange(256, dtype=np.uint8), np.arange(65536, dtype=np.uint16)
    cases = [
        quantized("u8_float", "float32", u8, min=-1.3, scale=0.011),
        quantized("u8_int_ties", "int32", u8, min=-64, scale=0.5),
        quantized("u8_int_all_ties", "int32", u8, min=-127.5, scale=1),
        quantized("u8_int_below_half", "int32", u8[:3], min=0.49999999999999994, scale=0),
        quantized("u8_int_wraps", "int32", u8, min=3e9, scale=1e7),
        quantized("u8_int_overflows", "int32", u8[:4], min=0, scale=1e308),
        quantized("u16_float", "float32", u16, min=-20.123, scale=0.000613),
        quantized("u16_int_ties", "int32", u16, min=-16384.5, scale=0.5),
        quantized("f16_all", "float32", u16, stored_dtype="float16"),
        quantized("f16_named", "float32", np.array([0x7BFF, 1, 0x7C00, 0xC000], np.uint16),
                  stored_dtype="float16"),
    ]  # fmt: skip
    return [spec for spec, _ in cases], b"".join(data for _, data in cases)


def test_dequantization_follows_tfjs_arithmetic() -> None:
    specs, data = quantized_cases()
    decoded = decode_weights(data, specs, strict=True)
    q8 = np.arange(256, dtype=np.float64)
    js_round = [math.floor(x + 0.5) for x in (q8 * 0.5 - 64)]  # exact here: x is k/2
    assert decoded["u8_int_ties"].tolist() == js_round
    assert decoded["u8_int_ties"][[1, 127, 129]].tolist() == [-63, -0, 1]  # -63.5, -0.5, 0.5
    assert decoded["u8_int_all_ties"].tolist() == list(range(-127, 129))
    assert decoded["u8_int_below_half"].tolist() == [0, 0, 0]
    assert decoded["u8_int_overflows"].tolist() == [0, 0, 0, 0]
    assert decoded["u8_int_wraps"][0] == 3_000_000_000 - 2**32
    expected_float = (q8 * 0.011 + -1.3).astype(np.float32)
    assert np.array_equal(decoded["u8_float"].view(np.uint32), expected_float.view(np.uint32))
    assert decoded["f16_named"].tolist() == [65504.0, 2**-24, math.inf, -2.0]
    all_f16 = np.arange(65536, dtype=np.uint16).view(np.float16).astype(np.float32)
    assert_identical(decoded["f16_all"], all_f16)
    assert {array.dtype.name for array in decoded.values()} == {"float32", "int32"}


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        np.zeros(2, dtype=np.longdouble),
        np.zeros(2, dtype=np.clongdouble),
        np.array(["2020-01-01"], dtype="datetime64[D]"),
        np.array([1], dtype="timedelta64[s]"),
        np.zeros(2, dtype=[("a", "<i4"), ("b", "<f4")]),
        np.zeros(2, dtype="V4"),
    ],
    ids=lambda value: str(value.dtype),
)
def test_unsupported_dtypes_say_what_to_convert_to(value: npt.NDArray[Any]) -> None:
    if value.dtype.itemsize <= {"f": 8, "c": 16}.get(value.dtype.kind, 0):
        pytest.skip("long double is double on this platform")
    with pytest.raises(TypeError, match=r"weight 'w' has dtype .*convert it to float32, int32"):
        encode_weights({"w": value})


@pytest.mark.parametrize(
    "value", [np.array([1.0, 2.0], dtype=object), [1, "a"], [["a"], ["b", "c"]]]
)
def test_string_tensors_hold_only_str_or_bytes(value: Any) -> None:
    with pytest.raises(TypeError, match=r"string weight 'w' is of type .*only str or bytes"):
        encode_weights({"w": value})


@pytest.mark.parametrize(
    "value",
    [
        np.array([0, 2**31]),
        np.array([-(2**31) - 1]),
        np.array([2**32], np.uint64),
        np.uint32(2**31),
    ],
)
def test_integers_outside_int32_are_refused(value: Any) -> None:
    with pytest.raises(ValueError, match=r"outside the int32 range.*clip or rescale"):
        encode_weights({"w": value})


def test_floats_that_overflow_float32_are_refused_but_infinities_pass() -> None:
    with pytest.raises(ValueError, match=r"'w' has finite float64 values beyond float32"):
        encode_weights({"w": np.array([1.0, 1e39])})
    with pytest.raises(ValueError, match=r"'c' has finite complex128 values"):
        encode_weights({"c": np.array([complex(0, -1e300)])})
    specs, data = encode_weights({"w": np.array([np.inf, -np.inf, np.nan])})
    assert np.isinf(decode_weights(data, specs)["w"][:2]).all()


def test_unencodable_text_is_refused() -> None:
    with pytest.raises(ValueError, match=r"string 1 of weight 'w' cannot be encoded as UTF-8"):
        encode_weights({"w": ["ok", "\ud800"]})


def test_too_short_data_names_the_weight() -> None:
    specs, data = encode_weights({"a": np.ones(2, np.float32), "b": np.ones(3, np.float32)})
    with pytest.raises(
        ValueError, match=r"too short for weight 'b': it needs 12 bytes from byte 8"
    ):
        decode_weights(data[:-1], specs)
    with pytest.raises(ValueError, match=r"too short for weight 'b'"):
        decode_weights([data[:4], data[4:12]], specs)


def test_too_short_string_data_names_the_element() -> None:
    specs, data = encode_weights({"s": ["abc", "defgh"]})
    with pytest.raises(ValueError, match=r"too short for string 1 of weight 's'"):
        decode_weights(data[:-2], specs)
    with pytest.raises(ValueError, match=r"too short for string 1 of weight 's'"):
        decode_weights(data[:9], specs)  # inside the second length prefix


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"shape": [1], "dtype": "float32"}, r"weight spec 0 has no string 'name'"),
        ({"name": "w", "shape": [1], "dtype": "float64"}, r"'w' has dtype 'float64'; TF.js"),
        ({"name": "w", "shape": [-1], "dtype": "int32"}, r"dimensions are ints >= 0"),
        ({"name": "w", "shape": "3", "dtype": "int32"}, r"a shape is a list of ints"),
        ({"name": "w", "shape": [True], "dtype": "int32"}, r"dimensions are ints"),
        (
            {"name": "w", "shape": [1], "dtype": "float32", "quantization": {"dtype": "int8"}},
            r"quantization dtype 'int8'; supported quantization dtypes",
        ),
        (
            {"name": "w", "shape": [1], "dtype": "float32", "quantization": {"dtype": "uint8"}},
            r"quantization uint8 needs numeric 'min' and 'scale'",
        ),
        (
            {"name": "w", "shape": [1], "dtype": "int32", "quantization": {"dtype": "float16"}},
            r"float16, which only supports float32 weights, not int32",
        ),
        (
            {
                "name": "w",
                "shape": [1],
                "dtype": "bool",
                "quantization": {"dtype": "uint8", "min": 0, "scale": 1},
            },
            r"supports float32 and int32 weights only, not bool",
        ),
    ],
)
def test_malformed_specs_are_refused(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode_weights(bytes(64), [spec])


def test_data_must_be_buffers() -> None:
    with pytest.raises(TypeError, match=r"bytes-like buffers"):
        decode_weights(["not bytes"], [])  # type: ignore[list-item]


# --- parity with the real TF.js ---------------------------------------------------------------


def node_decode(
    tmp_path: Path, specs: Sequence[Mapping[str, Any]], buffers: Sequence[bytes]
) -> dict[str, Any]:
    """tf.io.decodeWeights in Node; several buffers go in as a shard list."""
    manifest = tmp_path / "specs.json"
    manifest.write_text(json.dumps(list(specs)))
    args = ["decode", "--manifest-json", str(manifest)]
    for index, buffer in enumerate(buffers):
        path = tmp_path / f"shard{index}.bin"
        path.write_bytes(buffer)
        args += ["--weights", str(path)]
    tensors: dict[str, Any] = tfjs(*args)["tensors"]
    return tensors


def from_tfjs(tensor: Mapping[str, Any]) -> npt.NDArray[Any]:
    """The harness's JSON form of a tensor (flat values) as a numpy array."""
    dtype, shape, values = tensor["dtype"], tuple(tensor["shape"]), tensor["values"]
    if dtype == "string":
        strings = np.empty(len(values), dtype=object)
        strings[:] = values
        return strings.reshape(shape)
    if dtype in ("float32", "complex64"):
        floats = np.array(values, dtype=np.float64).astype(np.float32)
        return floats.view(np.complex64 if dtype == "complex64" else np.float32).reshape(shape)
    return np.array(values, dtype={"int32": np.int32, "bool": np.bool_}[dtype]).reshape(shape)


def to_tfjs(name: str, array: npt.NDArray[Any]) -> dict[str, Any]:
    """The harness's JSON form of a numpy array (float32 widened exactly to doubles)."""
    dtype = {"f": "float32", "i": "int32", "b": "bool", "c": "complex64", "O": "string"}
    kind = array.dtype.kind
    flat = array.view(np.float32) if kind == "c" else array
    values = flat.astype(np.float64) if kind in "fc" else flat
    shape, flat_values = list(array.shape), values.ravel().tolist()
    return {"name": name, "dtype": dtype[kind], "shape": shape, "values": flat_values}


def replaced_invalid_utf8(array: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """What TF.js shows for strings that are not UTF-8: U+FFFD replacements."""
    shown = array.copy()
    for index, value in np.ndenumerate(array):
        if isinstance(value, bytes):
            shown[index] = value.decode("utf-8", "replace")
    return shown


@pytest.mark.node
def test_tfjs_decodes_what_python_encodes(tmp_path: Path) -> None:
    tensors = sample_tensors()
    tensors["not_utf8"] = np.array([b"\xff\xfe", b"ok\xc3"], dtype=object)
    specs, data = encode_weights(tensors)
    decoded = node_decode(tmp_path, specs, [data + b"trailing bytes are ignored"])
    expected = {name: replaced_invalid_utf8(array) for name, array in tensors.items()}
    assert_all_identical({name: from_tfjs(tensor) for name, tensor in decoded.items()}, expected)


@pytest.mark.node
def test_python_decodes_what_tfjs_encodes_and_encodes_the_same_bytes(tmp_path: Path) -> None:
    tensors = sample_tensors()
    (tmp_path / "tensors.json").write_text(
        json.dumps([to_tfjs(name, array) for name, array in tensors.items()])
    )
    result = tfjs(
        "encode",
        "--tensors-json", str(tmp_path / "tensors.json"),
        "--out-weights", str(tmp_path / "weights.bin"),
        "--out-specs", str(tmp_path / "specs.json"),
    )  # fmt: skip
    tfjs_data = (tmp_path / "weights.bin").read_bytes()
    tfjs_specs = json.loads((tmp_path / "specs.json").read_text())
    assert result["byteLength"] == len(tfjs_data)
    assert_all_identical(decode_weights(tfjs_data, tfjs_specs, strict=True), tensors)
    assert encode_weights(tensors) == (tfjs_specs, tfjs_data)


@pytest.mark.node
def test_dequantization_matches_tfjs_bit_for_bit(tmp_path: Path) -> None:
    specs, data = quantized_cases()
    tfjs_decoded = node_decode(tmp_path, specs, [data])
    decoded = decode_weights(data, specs)
    assert_all_identical(
        decoded, {name: from_tfjs(tensor) for name, tensor in tfjs_decoded.items()}
    )


@pytest.mark.node
@pytest.mark.parametrize("shard_size", [5, 13, 64])
def test_shards_split_inside_tensors_decode_like_tfjs(tmp_path: Path, shard_size: int) -> None:
    # Every shard but the last has the same size: TF.js 4.6+ misreads other splits (§11).
    tensors = sample_tensors()
    specs, data = encode_weights(tensors)
    shards = [data[start : start + shard_size] for start in range(0, len(data), shard_size)]
    tfjs_decoded = node_decode(tmp_path, specs, shards)
    assert_all_identical(
        {name: from_tfjs(tensor) for name, tensor in tfjs_decoded.items()}, tensors
    )
    assert_all_identical(decode_weights(shards, specs, strict=True), tensors)
