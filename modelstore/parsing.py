"""Parsing and validating model.json bytes once, into what a save stores (issue 8).

Two ways, one result: ``modelstore.splitparsing`` handles a document as raw slices, so a
60 MB model.json costs a small multiple of its size; documents it cannot split (a lone
surrogate, a BOM, invalid UTF-8, a 4300-digit integer, or invalid JSON, whose error
message ``json.loads`` words best) are parsed whole here, as before.
"""

from __future__ import annotations

import json
from typing import Any

from modelshelf.modelstore import splitparsing
from modelshelf.modelstore.errors import InvalidModelError
from modelshelf.modelstore.jsjson import compact_json, js_byte_length
from modelshelf.modelstore.manifest import (
    ValidatedModelJson,
    check_groups_have_files,
    file_specs,
    normalize_weight_path,
    require_model_content,
    validate_schema,
    weight_entry,
)
from modelshelf.modelstore.rawjson import UnsplittableJsonError
from modelshelf.modelstore.served import ServedModelJson


def parse_model_json(data: bytes, weight_prefix: str = "") -> ValidatedModelJson:
    """Parse and validate model.json bytes; raises InvalidModelError saying what to fix.

    Blocking and CPU-bound for big documents: run it in a worker thread.

    Args:
        data: model.json as uploaded.
        weight_prefix: put before every weight path of the served document (``~v/VID/``).
    """
    try:
        return splitparsing.parse_split(data, weight_prefix)
    except UnsplittableJsonError:
        return parse_whole(data, weight_prefix)


def parse_whole(data: bytes, weight_prefix: str = "") -> ValidatedModelJson:
    """``parse_model_json`` with the whole document in memory as Python objects."""
    document = _decode(data)
    validate_schema(document)
    manifest = document.get("weightsManifest") or []
    entries = [
        weight_entry(raw, group_index)
        for group_index, group in enumerate(manifest)
        for raw in group.get("weights") or []
    ]
    files = file_specs(manifest)
    check_groups_have_files(len(manifest), entries, files)
    specs = [entry for group in manifest for entry in group.get("weights") or []]
    topology = document.get("modelTopology")
    try:
        topology_bytes = 0 if topology is None else js_byte_length(topology)
        specs_bytes = 0 if "weightsManifest" not in document else js_byte_length(specs)
    except RecursionError:
        raise InvalidModelError("model.json is nested too deeply") from None
    served = ServedModelJson([compact_json(_rewrite_paths(document, weight_prefix))])
    return ValidatedModelJson(entries, files, len(manifest), topology_bytes, specs_bytes, served)


def _rewrite_paths(document: dict[str, Any], prefix: str) -> dict[str, Any]:
    for group in document.get("weightsManifest") or []:
        group["paths"] = [prefix + normalize_weight_path(path) for path in group["paths"]]
    return document


def _decode(data: bytes) -> dict[str, Any]:
    try:
        document = json.loads(data, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as error:  # JSONDecodeError, int digit limit
        raise InvalidModelError(f"model.json is not valid JSON: {error}") from None
    except RecursionError:
        raise InvalidModelError("model.json is nested too deeply") from None
    if not isinstance(document, dict):
        raise InvalidModelError("model.json must be a JSON object")
    require_model_content(document)
    return document


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON (TF.js's response.json() rejects it); use null")
