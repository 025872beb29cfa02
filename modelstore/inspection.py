"""What a model.json says about its model, for the console (issue 13): no weight byte is read.

Layers models list their layers (nested models flattened, each row naming its container) with
parameter counts summed from the weight specs; graph models count their op types; both list
their weights as the manifest describes them (§2.2).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from modelshelf.modelstore.errors import InvalidModelError
from modelshelf.modelstore.manifest import ELEMENT_BYTES

ModelKind = Literal["layers", "graph", "unknown"]
_CONTAINERS = {"Sequential", "Model", "Functional"}
# Config keys worth a column, in the order a reader looks for them, and how they are named.
_DETAIL_KEYS = (
    ("units", "units"),
    ("filters", "filters"),
    ("kernel_size", "kernel"),
    ("pool_size", "pool"),
    ("input_dim", "input dim"),
    ("output_dim", "output dim"),
    ("rate", "rate"),
    ("target_shape", "target shape"),
    ("batch_input_shape", "shape"),
    ("batch_shape", "shape"),  # Keras 3 InputLayer
)


@dataclass(frozen=True, slots=True)
class WeightRow:
    """One weight spec of the manifest.

    Attributes:
        quantization: the manifest's quantization object as stored, or None.
        stored_bytes: the bytes it takes in the weight files; None for strings (variable).
        group: the index of its ``weightsManifest`` group.
        optimizer: the spec says ``"group": "optimizer"`` (tfjs-layers' optimizer state).
    """

    name: str
    shape: list[int]
    dtype: str
    quantization: dict[str, Any] | None
    stored_bytes: int | None
    group: int
    optimizer: bool


@dataclass(frozen=True, slots=True)
class LayerRow:
    """One layer; ``container`` names the nested models it sits in (``outer/inner``, or "")."""

    class_name: str
    name: str
    container: str
    detail: str
    params: int


@dataclass(frozen=True, slots=True)
class ModelOverview:
    """model.json's metadata, layers or ops, and weights.

    ``total_params`` counts the elements of every weight but the optimizer's.
    """

    format: str | None
    generated_by: str | None
    converted_by: str | None
    user_defined_metadata: dict[str, Any] | None
    kind: ModelKind
    layers: list[LayerRow]
    ops: list[tuple[str, int]]
    weights: list[WeightRow]
    total_params: int


def overview(model_json: bytes) -> ModelOverview:
    """Describe a stored model.json (``ModelStore.original_model_json``).

    Pure and CPU-bound for big documents: run it in a worker thread.

    Raises:
        InvalidModelError: the bytes are not a JSON object.
    """
    document = _load(model_json)
    weights = list(weight_rows(document.get("weightsManifest")))
    kind = _kind(document)
    topology = _as_dict(document.get("modelTopology"))
    layers = _layer_rows(topology, weights) if kind == "layers" else []
    return ModelOverview(
        format=_as_str(document.get("format")),
        generated_by=_as_str(document.get("generatedBy")),
        converted_by=_as_str(document.get("convertedBy")),
        user_defined_metadata=_metadata(document.get("userDefinedMetadata")),
        kind=kind,
        layers=layers,
        ops=op_counts(topology) if kind == "graph" else [],
        weights=weights,
        total_params=sum(_elements(row) for row in weights if not row.optimizer),
    )


def weight_rows(manifest: Any) -> Iterator[WeightRow]:
    """The weight specs of a ``weightsManifest``, in stream order (§2.3)."""
    for group_index, group in enumerate(manifest if isinstance(manifest, list) else []):
        for spec in group.get("weights") or []:
            quantization = spec.get("quantization")
            yield WeightRow(
                name=spec["name"],
                shape=list(spec["shape"]),
                dtype=spec["dtype"],
                quantization=quantization,
                stored_bytes=stored_bytes(spec["dtype"], spec["shape"], quantization),
                group=group_index,
                optimizer=spec.get("group") == "optimizer",
            )


def stored_bytes(dtype: str, shape: list[int], quantization: dict[str, Any] | None) -> int | None:
    """Bytes of one tensor in the weight files (§2.3); None for strings, which vary."""
    stored = quantization["dtype"] if quantization else dtype
    if stored not in ELEMENT_BYTES:
        return None
    return math.prod(shape) * ELEMENT_BYTES[stored]


def op_counts(topology: dict[str, Any]) -> list[tuple[str, int]]:
    """Op type -> node count over the graph and its library functions, most frequent first."""
    counts: Counter[str] = Counter(_ops(topology.get("node")))
    library = _as_dict(topology.get("library"))
    for function in library.get("function") or []:
        counts.update(_ops(_as_dict(function).get("nodeDef")))
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def _ops(nodes: Any) -> Iterator[str]:
    for node in nodes if isinstance(nodes, list) else []:
        op = _as_dict(node).get("op")
        if isinstance(op, str):
            yield op


def _load(model_json: bytes) -> dict[str, Any]:
    try:
        document = json.loads(model_json)
    except (UnicodeDecodeError, ValueError) as error:
        raise InvalidModelError(f"model.json is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise InvalidModelError("model.json must be a JSON object")
    return document


def _kind(document: dict[str, Any]) -> ModelKind:
    if document.get("format") == "layers-model":
        return "layers"
    if document.get("format") == "graph-model":
        return "graph"
    topology = _as_dict(document.get("modelTopology"))
    if "node" in topology:
        return "graph"
    if "class_name" in topology or "model_config" in topology:
        return "layers"
    return "unknown"


# -- layers ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Layer:
    class_name: str
    name: str
    container: str
    config: dict[str, Any]


def _layer_rows(topology: dict[str, Any], weights: list[WeightRow]) -> list[LayerRow]:
    # Converter output wraps the model as {model_config, training_config} (§2.4).
    model = _as_dict(topology.get("model_config")) or topology
    layers = list(_flatten(_layer_list(model), ""))
    params = _params_by_layer(layers, weights)
    return [
        LayerRow(layer.class_name, layer.name, layer.container, _detail(layer.config), params[i])
        for i, layer in enumerate(layers)
    ]


def _layer_list(model: dict[str, Any]) -> list[Any]:
    config = model.get("config")
    if isinstance(config, list):  # Keras 1's Sequential: config is the layer list
        return config
    layers = _as_dict(config).get("layers")
    return layers if isinstance(layers, list) else []


def _flatten(layers: list[Any], container: str) -> Iterator[_Layer]:
    for raw in layers:
        layer = _as_dict(raw)
        class_name = str(layer.get("class_name", ""))
        config = _as_dict(layer.get("config"))
        name = str(layer.get("name") or config.get("name") or "")
        if class_name in _CONTAINERS and _layer_list(layer):
            yield from _flatten(_layer_list(layer), f"{container}/{name}".lstrip("/"))
        else:
            yield _Layer(class_name, name, container, config)


def _params_by_layer(layers: list[_Layer], weights: list[WeightRow]) -> list[int]:
    """Each weight counts for the layer named by the rightmost segment of its path that names
    one (``block/block_dense/kernel`` -> ``block_dense``); a name used in two containers goes
    to the layer whose container path the weight's path holds too."""
    by_name: dict[str, list[int]] = {}
    for index, layer in enumerate(layers):
        by_name.setdefault(layer.name, []).append(index)
    params = [0] * len(layers)
    for row in weights:
        if row.optimizer:
            continue
        owner = _owner(row.name.split("/")[:-1], layers, by_name)
        if owner is not None:
            params[owner] += _elements(row)
    return params


def _owner(segments: list[str], layers: list[_Layer], by_name: dict[str, list[int]]) -> int | None:
    for position in range(len(segments) - 1, -1, -1):
        candidates = by_name.get(segments[position])
        if not candidates:
            continue
        outer = set(segments[:position])
        nested = [i for i in candidates if _container_parts(layers[i]) <= outer]
        return (nested or candidates)[-1]
    return None


def _container_parts(layer: _Layer) -> set[str]:
    return {part for part in layer.container.split("/") if part}


def _detail(config: dict[str, Any]) -> str:
    parts = [
        f"{label} {_show(config[key])}"
        for key, label in _DETAIL_KEYS
        if config.get(key) is not None
    ]
    activation = config.get("activation")
    if isinstance(activation, str) and activation != "linear":
        parts.append(f"activation {activation}")
    return ", ".join(parts)


def _show(value: Any) -> str:
    return json.dumps(value, separators=(", ", ": "))


def _elements(row: WeightRow) -> int:
    return math.prod(row.shape)


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _metadata(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def _as_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
