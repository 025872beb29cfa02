"""model.json parsed as raw slices gives what the whole-document parse gave (issue 8)."""

from __future__ import annotations

import json
from typing import Any
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from modelshelf.modelstore import rawjson
from modelshelf.modelstore.jsjson import compact_json, js_stringify
from modelshelf.modelstore.manifest import normalize_weight_path
from modelshelf.modelstore.parsing import parse_model_json, parse_whole
from modelshelf.modelstore.rawjson import UnsplittableJsonError
from modelshelf.modelstore.splitparsing import parse_split

PREFIX = "~v/20261126T003136123456Z-1a2b3c4d/"
NUMBER = r"-?(0|[1-9][0-9]{0,22})(\.[0-9]{1,20})?([eE][+-]?[0-9]{1,3})?"
SPACE = st.sampled_from(["", " ", "\n  ", "\t"])
TEXT = st.text(
    st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from(['"', "\\", "\n", "\x01", "\x7f", "\u2028", "é", "😀", "\ud800"]),
    ),
    max_size=12,
)


def _json_text(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


scalars = st.one_of(
    st.from_regex(NUMBER, fullmatch=True),
    TEXT.map(_json_text),
    TEXT.map(lambda text: json.dumps(text)),  # \uXXXX escapes
    st.sampled_from(["true", "false", "null", "-0", "1.0", "1e-7", "1E21", "123456789012345678"]),
)


def _array(items: list[str], space: str) -> str:
    return "[" + space + f",{space}".join(items) + space + "]"


def _object(members: list[tuple[str, str]], space: str) -> str:
    return "{" + ",".join(f"{space}{key}{space}:{space}{value}" for key, value in members) + "}"


json_texts = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.builds(_array, st.lists(children, max_size=6), SPACE),
        st.builds(
            _object,
            st.lists(st.tuples(st.one_of(TEXT.map(_json_text), st.just('"0"')), children)),
            SPACE,
        ),
    ),
    max_leaves=40,
)
objects = st.builds(
    _object, st.lists(st.tuples(TEXT.map(_json_text), json_texts), max_size=6), SPACE
)


def old_js_byte_length(value: Any) -> int:
    """The implementation before issue 8: build JSON.stringify's string, then measure."""
    return len(js_stringify(value).encode("utf-8"))


def old_published(data: bytes, prefix: str) -> Any:
    document = json.loads(data)
    for group in document.get("weightsManifest") or []:
        group["paths"] = [prefix + normalize_weight_path(path) for path in group["paths"]]
    return json.loads(compact_json(document))


def _document(topology: str, manifest: str = "[]", extra: str = "") -> bytes:
    return f'{{"modelTopology": {topology}, "weightsManifest": {manifest}{extra}}}'.encode()


@settings(max_examples=150, deadline=None)
@given(topology=objects)
def test_topology_bytes_equal_the_old_implementation(topology: str) -> None:
    expected = old_js_byte_length(json.loads(topology))
    data = _document(topology)
    assert parse_model_json(data, PREFIX).topology_bytes == expected
    with mock.patch.object(rawjson, "PIECE_BYTES", 8):  # split down to the smallest pieces
        assert parse_model_json(data, PREFIX).topology_bytes == expected


entries = st.fixed_dictionaries(
    {
        "name": TEXT,
        "shape": st.lists(st.integers(0, 3), max_size=3),
        "dtype": st.just("float32"),
    },
    optional={
        "quantization": st.fixed_dictionaries(
            {
                "dtype": st.just("uint8"),
                "min": st.floats(allow_nan=False, allow_infinity=False),
                "scale": st.one_of(
                    st.floats(allow_nan=False, allow_infinity=False), st.integers(-(2**60), 2**60)
                ),
            }
        ),
        "group": st.just("model"),
    },
)
groups = st.lists(
    st.tuples(
        st.lists(st.sampled_from(["a.bin", "./b.bin", "c/d.bin"]), unique=True), st.lists(entries)
    ),
    max_size=3,
)


def _manifest(found: list[tuple[list[str], list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    manifest = []
    for paths, weights in found:
        fresh = [path for path in paths if normalize_weight_path(path) not in seen]
        seen.update(normalize_weight_path(path) for path in fresh)
        manifest.append({"paths": fresh or [f"g{len(manifest)}.bin"], "weights": weights})
    return manifest


@settings(max_examples=100, deadline=None)
@given(found=groups, metadata=objects, indent=st.sampled_from([None, 1]))
def test_specs_bytes_and_served_document_equal_the_old_implementation(
    found: list[tuple[list[str], list[dict[str, Any]]]], metadata: str, indent: int | None
) -> None:
    manifest = json.dumps(_manifest(found), ensure_ascii=False, indent=indent)
    data = _document('{"a": 1}', manifest, f', "userDefinedMetadata": {metadata}')
    specs = [entry for group in json.loads(manifest) for entry in group["weights"]]
    with mock.patch("modelshelf.modelstore.splitparsing.ENTRY_BATCH_BYTES", 64):
        model = parse_model_json(data, PREFIX)
    assert model.weight_specs_bytes == old_js_byte_length(specs)
    assert json.loads(b"".join(model.served.chunks())) == old_published(data, PREFIX)
    assert [entry.name for entry in model.entries] == [entry["name"] for entry in specs]


@settings(max_examples=100, deadline=None)
@given(topology=objects)
def test_split_and_whole_parses_agree(topology: str) -> None:
    data = _document(topology, '[{"paths": ["./w.bin"], "weights": []}]')
    try:
        split = parse_split(data, PREFIX)
    except UnsplittableJsonError:
        return  # e.g. a lone surrogate: parse_model_json parses it whole
    whole = parse_whole(data, PREFIX)
    assert (split.topology_bytes, split.weight_specs_bytes) == (
        whole.topology_bytes,
        whole.weight_specs_bytes,
    )
    assert split.files == whole.files
    assert json.loads(b"".join(split.served.chunks())) == json.loads(
        b"".join(whole.served.chunks())
    )


def test_lone_surrogates_and_a_bom_take_the_whole_document_path() -> None:
    for data in (_document('{"s": "\\ud800"}'), b"\xef\xbb\xbf" + _document("{}")):
        model = parse_model_json(data, PREFIX)
        assert model.topology_bytes == old_js_byte_length(
            json.loads(data.decode("utf-8-sig"))["modelTopology"]
        )
