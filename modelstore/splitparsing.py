"""Parsing model.json as raw slices: no full copy of the document is ever built (issue 8).

The document splits into its top-level members without decoding them. What ModelJSON
types is checked on a skeleton (big objects stand in as ``{}``); manifest entries are
validated in small batches; modelTopologyBytes is measured piece by piece; the served
document is the uploaded bytes with only the manifest's ``paths`` written anew.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from typing import Any

from pydantic import TypeAdapter, ValidationError

from modelshelf.modelstore import rawjson
from modelshelf.modelstore.errors import InvalidModelError
from modelshelf.modelstore.jsjson import compact_json
from modelshelf.modelstore.manifest import (
    ValidatedModelJson,
    WeightEntry,
    check_groups_have_files,
    describe_problems,
    file_specs,
    normalize_weight_path,
    require_model_content,
    validate_schema,
    weight_entry,
)
from modelshelf.modelstore.rawjson import Raw, UnsplittableJsonError
from modelshelf.modelstore.served import Part, ServedModelJson
from modelshelf.schemas.artifacts import WeightsManifestEntry

ENTRY_BATCH_BYTES = 64 << 10  # one pydantic call holds the GIL; keep each one short
_TEXT_SLICE = 1 << 20
_DIGIT_LIMIT = 4300  # json.loads refuses longer integers (sys.int_info.default_max_str_digits)
_TOO_MANY_DIGITS = b"0" * (_DIGIT_LIMIT + 1)
_DIGITS_AS_ZEROS = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
_ENTRIES = TypeAdapter(list[WeightsManifestEntry])
Group = dict[str, Raw]


def parse_split(data: bytes, weight_prefix: str) -> ValidatedModelJson:
    """``parse_model_json`` over raw slices; raises UnsplittableJsonError to fall back."""
    _require_plain_utf8(data)
    top = rawjson.members(data)
    require_model_content(top)
    raw_groups = _raw_groups(top.get("weightsManifest"))
    groups = [rawjson.members(raw) if rawjson.kind(raw) == "{" else {} for raw in raw_groups]
    validate_schema(_skeleton(top, raw_groups, groups))
    paths = [rawjson.decode(group["paths"]) for group in groups]
    entries, specs_bytes = _entries(groups)
    files = file_specs([{"paths": group_paths} for group_paths in paths])
    check_groups_have_files(len(groups), entries, files)
    topology = top.get("modelTopology")
    try:
        topology_bytes = 0 if topology is None else _topology_bytes(topology)
    except RecursionError:
        raise InvalidModelError("model.json is nested too deeply") from None
    served = ServedModelJson(_served_parts(top, groups, paths, weight_prefix))
    specs = 0 if "weightsManifest" not in top else specs_bytes
    return ValidatedModelJson(entries, files, len(groups), topology_bytes, specs, served)


def _require_plain_utf8(data: bytes) -> None:
    """Leave to json.loads what it reads differently from msgspec (see module parsing)."""
    if json.detect_encoding(data[:4]) != "utf-8":  # a BOM, UTF-16 or UTF-32
        raise UnsplittableJsonError("not plain UTF-8")
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(data)
    try:
        for start in range(0, len(view), _TEXT_SLICE):
            piece = view[max(start - _DIGIT_LIMIT, 0) : start + _TEXT_SLICE]
            decoder.decode(view[start : start + _TEXT_SLICE])
            if _TOO_MANY_DIGITS in piece.tobytes().translate(_DIGITS_AS_ZEROS):
                raise UnsplittableJsonError("a number longer than json.loads reads")
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as error:
        raise UnsplittableJsonError(str(error)) from None


def _raw_groups(manifest: Raw | None) -> list[Raw]:
    """The manifest's groups; [] for a missing manifest or one that is not a list."""
    if manifest is None or rawjson.kind(manifest) != "[":
        return []
    return rawjson.items(manifest)


def _skeleton(top: dict[str, Raw], raw_groups: list[Raw], groups: list[Group]) -> dict[str, Any]:
    """The document with its big values replaced by empty ones of the same JSON type."""
    skeleton = {key: _stand_in(value) for key, value in top.items()}
    manifest = top.get("weightsManifest")
    if manifest is not None and rawjson.kind(manifest) == "[":
        skeleton["weightsManifest"] = [
            _group_skeleton(group) if rawjson.kind(raw) == "{" else _stand_in(raw)
            for raw, group in zip(raw_groups, groups, strict=True)
        ]
    return skeleton


def _group_skeleton(group: Group) -> dict[str, Any]:
    skeleton = {key: _stand_in(value) for key, value in group.items()}
    if "paths" in group:
        skeleton["paths"] = rawjson.decode(group["paths"])
    return skeleton  # "weights" entries are checked in batches by _entries


def _stand_in(value: Raw) -> Any:
    opening = rawjson.kind(value)
    if opening in "{[":
        return {} if opening == "{" else []
    return "" if opening == '"' else rawjson.decode(value)


def _entries(groups: list[Group]) -> tuple[list[WeightEntry], int]:
    """Every group's entries, checked, and the JS length of their flat list (weightSpecs)."""
    entries: list[WeightEntry] = []
    lengths = 0
    for group_index, group in enumerate(groups):
        weights = group.get("weights")
        if weights is None or rawjson.kind(weights) == "n":
            continue
        for values, length in _entry_batches(rawjson.items(weights), group_index):
            entries += [weight_entry(value, group_index) for value in values]
            lengths += length
    return entries, 2 + max(len(entries) - 1, 0) + lengths


def _entry_batches(raw_entries: list[Raw], group: int) -> Iterator[tuple[list[Any], int]]:
    """Checked entries a batch at a time, with the sum of their JS lengths."""
    start = 0
    for batch in rawjson.batches(raw_entries, ENTRY_BATCH_BYTES):
        values, length = rawjson.decode_batch(batch)
        _validate_entries(values, group, start)
        yield values, length
        start += len(batch)


def _validate_entries(values: list[Any], group: int, start: int) -> None:
    try:
        _ENTRIES.validate_python(values)
    except ValidationError as error:
        problems = error.errors()
        for problem in problems:
            index, *rest = problem["loc"]
            problem["loc"] = ("weightsManifest", group, "weights", start + int(index), *rest)
        raise InvalidModelError(
            f"model.json is not a valid TF.js model: {describe_problems(problems)}"
        ) from None


def _topology_bytes(topology: Raw) -> int:
    return 0 if rawjson.kind(topology) == "n" else rawjson.js_byte_length(topology)


def _served_parts(
    top: dict[str, Raw], groups: list[Group], paths: list[list[str]], prefix: str
) -> list[Part]:
    parts: list[Part] = [b"{"]
    for key, value in top.items():
        parts += [b"," if len(parts) > 1 else b"", compact_json(key), b":"]
        if key == "weightsManifest" and rawjson.kind(value) == "[":
            parts += _served_manifest(groups, paths, prefix)
        else:
            parts.append(value)
    return [*parts, b"}"]


def _served_manifest(groups: list[Group], paths: list[list[str]], prefix: str) -> list[Part]:
    parts: list[Part] = [b"["]
    for index, (group, group_paths) in enumerate(zip(groups, paths, strict=True)):
        rewritten = compact_json([prefix + normalize_weight_path(path) for path in group_paths])
        parts.append(b",{" if index else b"{")
        for member, (key, value) in enumerate(group.items()):
            parts += [b"," if member else b"", compact_json(key), b":"]
            parts.append(rewritten if key == "paths" else value)
        parts.append(b"}")
    return [*parts, b"]"]
