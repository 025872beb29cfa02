"""Hypothesis properties of the codecs and validators (issue 9.7).

- JS number formatting: what ``JSON.stringify`` writes for any double, by ECMAScript's
  Number::toString rules, and (with Node) byte for byte what V8 writes.
- the weights codec: decode(encode(arrays)) gives the arrays back, for every TF.js dtype.
- model.json validation: a valid document's sizes are what its specs say; any document is
  either accepted or refused with InvalidModelError, never another exception.
"""

from __future__ import annotations

import json
import math
import random
import struct
import subprocess
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from modelshelf import decode_weights, encode_weights
from modelshelf.modelstore.errors import InvalidModelError
from modelshelf.modelstore.jsjson import js_number
from modelshelf.modelstore.parsing import parse_model_json
from tests.support.tfjs import JS_DIR, require_tfjs

finite = st.floats(allow_nan=False, allow_infinity=False)


@given(finite)
def test_js_numbers_round_trip_and_follow_number_to_string(number: float) -> None:
    text = js_number(number)
    assert float(text) == number or (number == 0 and text == "0")
    magnitude = abs(number)
    exponential = number != 0 and (magnitude >= 1e21 or magnitude < 1e-6)
    assert ("e" in text) is exponential
    if exponential:
        mantissa, exponent = text.split("e")
        assert exponent[0] in "+-" and exponent[1:].isdigit()
        assert "." not in mantissa or not mantissa.endswith("0")
    elif number == int(number):
        assert "." not in text  # integral doubles print as integers, zero-padded
    digits = text.lstrip("-").split("e")[0].replace(".", "").lstrip("0")
    assert len(digits.rstrip("0")) <= 17  # the shortest digits that round-trip


@pytest.mark.node
def test_js_numbers_match_v8_byte_for_byte() -> None:
    require_tfjs()
    rng = random.Random(9)
    doubles = [struct.unpack("<d", rng.randbytes(8))[0] for _ in range(3000)]
    doubles += [rng.uniform(-1e3, 1e3) for _ in range(1000)]
    doubles += [float(f"1e{exponent}") for exponent in range(-30, 30)]
    doubles += [5e-324, 1.7976931348623157e308, 0.1 + 0.2, 123456789012345680000.0, -0.0]
    doubles = [value for value in doubles if math.isfinite(value)]
    script = "const xs = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
    script += "process.stdout.write(JSON.stringify(xs.map((x) => JSON.stringify(x))));"
    encoded = json.dumps([repr(value) for value in doubles]).replace('"', "")
    result = subprocess.run(
        ["node", "-e", script],
        input=encoded,
        capture_output=True,
        text=True,
        cwd=JS_DIR,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert [js_number(value) for value in doubles] == json.loads(result.stdout)


_DTYPES = {
    "float32": hnp.arrays(np.float32, hnp.array_shapes(min_dims=0, max_dims=3, max_side=4)),
    "int32": hnp.arrays(np.int32, hnp.array_shapes(min_dims=0, max_dims=3, max_side=4)),
    "bool": hnp.arrays(np.bool_, hnp.array_shapes(min_dims=0, max_dims=3, max_side=4)),
    "complex64": hnp.arrays(
        np.complex64,
        hnp.array_shapes(min_dims=1, max_dims=2, max_side=4),
        elements=st.complex_numbers(allow_nan=False, allow_infinity=False, width=64),
    ),
}
tensors = st.dictionaries(
    st.text(min_size=1, max_size=12),
    st.one_of(*_DTYPES.values()),
    max_size=5,
)


@given(tensors)
def test_the_weights_codec_round_trips_every_dtype(arrays: dict[str, np.ndarray]) -> None:
    specs, data = encode_weights(arrays)
    assert len(data) == sum(array.nbytes for array in arrays.values())
    decoded = decode_weights(data, specs)
    assert list(decoded) == list(arrays)
    for name, array in arrays.items():
        assert decoded[name].shape == array.shape
        np.testing.assert_array_equal(decoded[name], array)


@given(st.lists(st.text(max_size=8), max_size=6))
def test_string_weights_round_trip(values: list[str]) -> None:
    specs, data = encode_weights({"s": np.array(values, dtype=object)})
    assert list(decode_weights(data, specs)["s"]) == values


BYTES_PER = {"float32": 4, "int32": 4, "bool": 1, "complex64": 8}
spec = st.fixed_dictionaries(
    {
        "shape": st.lists(st.integers(0, 5), max_size=3),
        "dtype": st.sampled_from(sorted(BYTES_PER)),
    }
)


@given(st.lists(spec, max_size=6), st.integers(1, 3))
def test_valid_manifests_are_sized_by_their_specs(specs: list[dict[str, Any]], files: int) -> None:
    weights = [{"name": f"w{index}", **item} for index, item in enumerate(specs)]
    paths = [f"shard{index}.bin" for index in range(files)]
    document = {"modelTopology": {}, "weightsManifest": [{"paths": paths, "weights": weights}]}
    model = parse_model_json(json.dumps(document).encode(), "~v/X/")
    assert [entry.size for entry in model.entries] == [
        math.prod(item["shape"]) * BYTES_PER[item["dtype"]] for item in specs
    ]
    assert [file.path for file in model.files] == paths
    served = json.loads(b"".join(model.served.chunks()))
    assert served["weightsManifest"][0]["paths"] == [f"~v/X/{path}" for path in paths]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)
documents = st.dictionaries(
    st.sampled_from(["modelTopology", "weightsManifest", "format", "x"]), json_values
) | st.builds(
    lambda groups: {"weightsManifest": groups},
    st.lists(st.dictionaries(st.sampled_from(["paths", "weights"]), json_values), max_size=3),
)


@given(documents)
def test_any_document_is_accepted_or_refused_clearly(document: dict[str, Any]) -> None:
    raw = json.dumps(document, allow_nan=True).encode()
    try:
        parse_model_json(raw, "~v/X/")
    except InvalidModelError as error:
        assert str(error)
