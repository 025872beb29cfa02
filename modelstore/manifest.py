"""Validating ``model.json`` as a TF.js loader will read it (protocol doc §2, §12 items 3-7)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from backends.errors import InvalidKeyError
from backends.keys import validate_key
from modelstore.errors import InvalidModelError
from modelstore.jsjson import js_byte_length
from schemas.artifacts import ModelJSON

ELEMENT_BYTES = {
    "float32": 4,
    "int32": 4,
    "bool": 1,
    "complex64": 8,
    "float16": 2,
    "uint16": 2,
    "uint8": 1,
}
QUANTIZABLE_DTYPES = {"float32", "int32"}


@dataclass(frozen=True, slots=True)
class WeightEntry:
    """One tensor of the weight stream: ``size`` bytes, or None for strings (walked)."""

    name: str
    group: int
    size: int | None
    elements: int


@dataclass(frozen=True, slots=True)
class WeightFileSpec:
    """One file a manifest names: its normalised path and the group it belongs to."""

    path: str
    manifest_path: str
    group: int


@dataclass(frozen=True, slots=True)
class ValidatedModelJson:
    """A model.json that passed validation, with what saving and loading need of it."""

    document: dict[str, Any]
    entries: list[WeightEntry]
    files: list[WeightFileSpec]
    group_count: int
    topology_bytes: int
    weight_specs_bytes: int

    @property
    def weight_specs(self) -> list[Any]:
        """The flat list of manifest entries, as TF.js builds ``weightSpecs``."""
        groups = self.document.get("weightsManifest") or []
        return [entry for group in groups for entry in group.get("weights") or []]

    @property
    def expected_weight_bytes(self) -> int | None:
        """Total weight bytes, or None when string tensors make it depend on the data."""
        sizes = [entry.size for entry in self.entries]
        return None if None in sizes else sum(size or 0 for size in sizes)

    def group_has_files(self, group: int) -> bool:
        return any(spec.group == group for spec in self.files)


def parse_model_json(data: bytes) -> ValidatedModelJson:
    """Parse and validate model.json bytes; raises InvalidModelError saying what to fix."""
    document = _decode(data)
    _validate_schema(document)
    manifest = document.get("weightsManifest") or []
    entries = [
        _entry(raw, group_index)
        for group_index, group in enumerate(manifest)
        for raw in group.get("weights") or []
    ]
    files = _file_specs(manifest)
    _check_groups_have_files(manifest, entries, files)
    specs = [entry for group in manifest for entry in group.get("weights") or []]
    topology = document.get("modelTopology")
    try:
        topology_bytes = 0 if topology is None else js_byte_length(topology)
        specs_bytes = 0 if "weightsManifest" not in document else js_byte_length(specs)
    except RecursionError:
        raise InvalidModelError("model.json is nested too deeply") from None
    return ValidatedModelJson(document, entries, files, len(manifest), topology_bytes, specs_bytes)


def normalize_weight_path(path: str) -> str:
    """``./a/./b.bin`` -> ``a/b.bin``; raises InvalidModelError for paths that could escape."""
    problem = _path_problem(path)
    if problem:
        raise InvalidModelError(f"weight path {path!r} {problem}; use a plain relative file name")
    normalized = "/".join(segment for segment in path.split("/") if segment != ".")
    try:
        return validate_key(normalized)
    except InvalidKeyError as error:
        raise InvalidModelError(f"weight path {path!r} is not storable: {error}") from None


def _path_problem(path: str) -> str | None:
    if not path:
        return "is empty"
    if path.startswith("/"):
        return "is absolute"
    if "?" in path or "#" in path:
        return "contains '?' or '#', which TF.js would treat as part of the URL"
    if any(character in path for character in '%"\r\n\\'):
        return "contains '%', '\"', a backslash or a line break, which URLs or forms would mangle"
    if ".." in path.split("/"):
        return "contains '..'"
    return None


def _decode(data: bytes) -> dict[str, Any]:
    try:
        document = json.loads(data, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as error:  # JSONDecodeError, int digit limit
        raise InvalidModelError(f"model.json is not valid JSON: {error}") from None
    except RecursionError:
        raise InvalidModelError("model.json is nested too deeply") from None
    if not isinstance(document, dict):
        raise InvalidModelError("model.json must be a JSON object")
    if "modelTopology" not in document and "weightsManifest" not in document:
        raise InvalidModelError(
            "model.json needs 'modelTopology' or 'weightsManifest' (TF.js loads neither without)"
        )
    return document


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON (TF.js's response.json() rejects it); use null")


def _validate_schema(document: dict[str, Any]) -> None:
    try:
        ModelJSON.model_validate(document)
    except ValidationError as error:
        raise InvalidModelError(
            f"model.json is not a valid TF.js model: {_describe(error)}"
        ) from None


def _describe(error: ValidationError) -> str:
    problems = [
        f"{'.'.join(str(part) for part in item['loc'])}: {item['msg']}"
        for item in error.errors()[:5]
    ]
    more = error.error_count() - len(problems)
    return "; ".join(problems) + (f" (and {more} more)" if more > 0 else "")


def _entry(raw: dict[str, Any], group: int) -> WeightEntry:
    name, dtype = raw["name"], raw["dtype"]
    elements = math.prod(raw["shape"])
    if "quantization" not in raw:
        size = None if dtype == "string" else elements * ELEMENT_BYTES[dtype]
        return WeightEntry(name, group, size, elements)
    quantization = raw["quantization"]
    _check_quantization(name, dtype, quantization)
    return WeightEntry(name, group, elements * ELEMENT_BYTES[quantization["dtype"]], elements)


def _check_quantization(name: str, dtype: str, quantization: dict[str, Any] | None) -> None:
    where = f"weight {name!r}"
    if quantization is None:
        raise InvalidModelError(
            f'{where} has "quantization": null, which breaks TF.js decoding; leave the key out'
        )
    if dtype not in QUANTIZABLE_DTYPES:
        raise InvalidModelError(f"{where}: only float32 and int32 weights can be quantized")
    kind = quantization["dtype"]
    if kind == "float16" and dtype != "float32":
        raise InvalidModelError(f"{where}: float16 quantization needs dtype float32")
    if kind in ("uint8", "uint16") and (
        quantization.get("min") is None or quantization.get("scale") is None
    ):
        raise InvalidModelError(f"{where}: {kind} quantization needs numeric 'min' and 'scale'")


def _file_specs(manifest: list[dict[str, Any]]) -> list[WeightFileSpec]:
    specs: list[WeightFileSpec] = []
    seen: set[str] = set()
    for group_index, group in enumerate(manifest):
        for manifest_path in group["paths"]:
            path = normalize_weight_path(manifest_path)
            if path in seen:
                raise InvalidModelError(f"weight path {manifest_path!r} is listed twice")
            seen.add(path)
            specs.append(WeightFileSpec(path, manifest_path, group_index))
    return specs


def _check_groups_have_files(
    manifest: list[dict[str, Any]], entries: list[WeightEntry], files: list[WeightFileSpec]
) -> None:
    for group_index in range(len(manifest)):
        if any(spec.group == group_index for spec in files):
            continue
        if any(entry.group == group_index and entry.size != 0 for entry in entries):
            raise InvalidModelError(
                f"weightsManifest group {group_index} has weights but no 'paths' to hold them"
            )
