"""The console's model overview (issue 13): layers, ops and weights read from model.json."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from modelshelf.modelstore.errors import InvalidModelError
from modelshelf.modelstore.inspection import LayerRow, ModelOverview, overview

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
