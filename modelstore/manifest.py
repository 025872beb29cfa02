"""The rules of ``model.json``'s weights manifest, as a TF.js loader reads it (§2, §12 3-7).

Parsing lives in ``modelstore.parsing``; this module knows entries, sizes and paths.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from modelshelf.backends.errors import InvalidKeyError
from modelshelf.backends.keys import validate_key
from modelshelf.modelstore.errors import InvalidModelError
from modelshelf.modelstore.served import ServedModelJson
from modelshelf.schemas.artifacts import ModelJSON

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
    """A model.json that passed validation, with what saving and loading need of it.

    ``served`` is model.json as loaders get it: weight paths rewritten to the version's
    immutable files (``~v/VID/PATH``), as slices of the uploaded bytes where possible.
    """

    entries: list[WeightEntry]
    files: list[WeightFileSpec]
    group_count: int
    topology_bytes: int
    weight_specs_bytes: int
    served: ServedModelJson


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


def require_model_content(keys: Iterable[str]) -> None:
    """Refuse a document TF.js would load nothing from."""
    if "modelTopology" not in keys and "weightsManifest" not in keys:
        raise InvalidModelError(
            "model.json needs 'modelTopology' or 'weightsManifest' (TF.js loads neither without)"
        )


def validate_schema(document: dict[str, Any]) -> None:
    """Check ``document`` against ModelJSON; raises InvalidModelError naming the problems."""
    try:
        ModelJSON.model_validate(document)
    except ValidationError as error:
        raise InvalidModelError(
            f"model.json is not a valid TF.js model: {describe_problems(error.errors())}"
        ) from None


def describe_problems(errors: list[ErrorDetails], count: int | None = None) -> str:
    """The first few validation problems, each at its place in model.json."""
    problems = [
        f"{'.'.join(str(part) for part in item['loc'])}: {item['msg']}" for item in errors[:5]
    ]
    more = (len(errors) if count is None else count) - len(problems)
    return "; ".join(problems) + (f" (and {more} more)" if more > 0 else "")


def weight_entry(raw: dict[str, Any], group: int) -> WeightEntry:
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


def file_specs(manifest: list[dict[str, Any]]) -> list[WeightFileSpec]:
    specs: list[WeightFileSpec] = []
    seen: set[str] = set()
    for group_index, group in enumerate(manifest):
        for manifest_path in group["paths"]:
            path = normalize_weight_path(manifest_path)
            if path.split("/")[0].startswith("~"):
                raise InvalidModelError(
                    f"weight path {manifest_path!r} starts with '~', which is reserved for "
                    f"the store's derived views; rename the file"
                )
            if path in seen:
                raise InvalidModelError(f"weight path {manifest_path!r} is listed twice")
            seen.add(path)
            specs.append(WeightFileSpec(path, manifest_path, group_index))
    return specs


def check_groups_have_files(
    group_count: int, entries: list[WeightEntry], files: list[WeightFileSpec]
) -> None:
    """Refuse a group with weight bytes but no file to hold them."""
    with_files = {spec.group for spec in files}
    for entry in entries:
        if entry.group not in with_files and entry.size != 0 and entry.group < group_count:
            raise InvalidModelError(
                f"weightsManifest group {entry.group} has weights but no 'paths' to hold them"
            )
