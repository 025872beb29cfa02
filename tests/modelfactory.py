"""Builders of TF.js models (model.json bytes plus weight bytes) for tests."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class ModelFixture:
    """A model as a client would upload it: model.json and one file per manifest path."""

    document: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def model_json(self) -> bytes:
        return json.dumps(self.document, separators=(",", ":")).encode()

    @property
    def weight_bytes(self) -> bytes:
        return b"".join(self.files.values())


def topology(name: str = "m") -> dict[str, Any]:
    return {
        "class_name": "Sequential",
        "config": {"name": name, "layers": []},
        "keras_version": "tfjs-layers 4.22.0",
        "backend": "tensor_flow.js",
    }


def http_saved(entries: list[dict[str, Any]], data: bytes, **extra: Any) -> ModelFixture:
    """The shape tf.io.http sends: one group, path ./model.weights.bin."""
    document: dict[str, Any] = {
        "modelTopology": topology(),
        "format": "layers-model",
        "generatedBy": "TensorFlow.js tfjs-layers v4.22.0",
        "convertedBy": None,
        "weightsManifest": [{"paths": ["./model.weights.bin"], "weights": entries}],
        **extra,
    }
    return ModelFixture(document, {"./model.weights.bin": data})


def dense_model(seed: int = 0, units: int = 3) -> ModelFixture:
    rng = np.random.default_rng(seed)
    kernel = rng.standard_normal((4, units)).astype("<f4")
    bias = rng.standard_normal(units).astype("<f4")
    entries = [
        {"name": "dense/kernel", "shape": [4, units], "dtype": "float32"},
        {"name": "dense/bias", "shape": [units], "dtype": "float32"},
    ]
    return http_saved(
        entries, kernel.tobytes() + bias.tobytes(), userDefinedMetadata={"seed": seed}
    )


def no_weights_model() -> ModelFixture:
    return http_saved([], b"")


def every_dtype_model() -> ModelFixture:
    strings = [b"a", "héllo".encode(), b""]
    string_bytes = b"".join(struct.pack("<I", len(s)) + s for s in strings)
    parts = [
        ("f", [2], "float32", np.array([1.5, -2], "<f4").tobytes()),
        ("i", [3], "int32", np.array([1, -2, 3], "<i4").tobytes()),
        ("b", [2, 2], "bool", bytes([1, 0, 0, 1])),
        ("c", [2], "complex64", np.array([1, 3, 2, 4], "<f4").tobytes()),
        ("s", [3], "string", string_bytes),
        ("scalar", [], "float32", np.array([7], "<f4").tobytes()),
        ("empty", [0, 3], "float32", b""),
    ]
    entries = [{"name": n, "shape": shape, "dtype": dtype} for n, shape, dtype, _ in parts]
    return http_saved(entries, b"".join(data for *_, data in parts))


def quantized_model() -> ModelFixture:
    entries = [
        {
            "name": "q8",
            "shape": [4],
            "dtype": "float32",
            "quantization": {
                "dtype": "uint8",
                "min": -1.0,
                "scale": 0.1,
                "original_dtype": "float32",
            },
        },
        {
            "name": "q16",
            "shape": [2],
            "dtype": "int32",
            "quantization": {"dtype": "uint16", "min": 0, "scale": 1},
        },
        {"name": "h", "shape": [3], "dtype": "float32", "quantization": {"dtype": "float16"}},
    ]
    data = bytes([0, 10, 20, 255]) + np.array([1, 65535], "<u2").tobytes()
    data += np.array([1.0, -2.0, 65504], "<f2").tobytes()
    return http_saved(entries, data)


def sharded_model(shard_bytes: int = 16) -> ModelFixture:
    """Converter layout: two groups, files group<G>-shard<I>of<N>.bin, equal-size shards."""
    groups: list[dict[str, Any]] = []
    files: dict[str, bytes] = {}
    for g, count in ((1, 10), (2, 7)):
        values = np.arange(count, dtype="<f4") + g * 100
        data = values.tobytes()
        shards = [data[i : i + shard_bytes] for i in range(0, len(data), shard_bytes)]
        paths = [f"group{g}-shard{i + 1}of{len(shards)}.bin" for i in range(len(shards))]
        files.update(zip(paths, shards, strict=True))
        groups.append(
            {"paths": paths, "weights": [{"name": f"g{g}/w", "shape": [count], "dtype": "float32"}]}
        )
    document = {
        "modelTopology": {"node": [], "library": {}, "versions": {}},
        "format": "graph-model",
        "generatedBy": "2.15.0",
        "convertedBy": "TensorFlow.js Converter v4.22.0",
        "weightsManifest": groups,
    }
    return ModelFixture(document, files)


def layers_model(seed: int = 0, shard_bytes: int = 64) -> ModelFixture:
    """A two-layer Sequential as tfjs-layers writes it, weights in converter-style shards."""
    rng = np.random.default_rng(seed)
    tensors = [
        ("dense_Dense1/kernel", rng.standard_normal((3, 4))),
        ("dense_Dense1/bias", rng.standard_normal(4)),
        ("dense_Dense2/kernel", rng.standard_normal((4, 2))),
        ("dense_Dense2/bias", rng.standard_normal(2)),
    ]
    data = b"".join(values.astype("<f4").tobytes() for _, values in tensors)
    shards = [data[i : i + shard_bytes] for i in range(0, len(data), shard_bytes)]
    paths = [f"group1-shard{i + 1}of{len(shards)}.bin" for i in range(len(shards))]

    def dense(name: str, units: int, **extra: Any) -> dict[str, Any]:
        config = {"name": name, "units": units, "activation": "relu", "use_bias": True, **extra}
        return {"class_name": "Dense", "config": config}

    document = {
        "modelTopology": {
            "class_name": "Sequential",
            "config": {
                "name": "sequential_1",
                "layers": [
                    dense("dense_Dense1", 4, batch_input_shape=[None, 3]),
                    dense("dense_Dense2", 2),
                ],
            },
            "keras_version": "tfjs-layers 4.22.0",
            "backend": "tensor_flow.js",
        },
        "format": "layers-model",
        "generatedBy": "TensorFlow.js tfjs-layers v4.22.0",
        "convertedBy": None,
        "userDefinedMetadata": {"team": "vision", "seed": seed},
        "weightsManifest": [
            {
                "paths": paths,
                "weights": [
                    {"name": name, "shape": list(values.shape), "dtype": "float32"}
                    for name, values in tensors
                ],
            }
        ],
    }
    return ModelFixture(document, dict(zip(paths, shards, strict=True)))


ALL_MODELS = {
    "layers": layers_model,
    "dense": dense_model,
    "no_weights": no_weights_model,
    "every_dtype": every_dtype_model,
    "quantized": quantized_model,
    "sharded": sharded_model,
}
