"""``ModelArtifacts`` in Python's idiom: what TF.js's IO handlers exchange (protocol doc §1)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelshelf._weights import decode_weights, encode_weights

# Python attribute -> model.json key, in the order TF.js writes them (protocol doc §2.1).
_LEADING = {
    "model_topology": "modelTopology",
    "format": "format",
    "generated_by": "generatedBy",
    "converted_by": "convertedBy",
}
_TRAILING = {
    "signature": "signature",
    "user_defined_metadata": "userDefinedMetadata",
    "model_initializer": "modelInitializer",
    "initializer_signature": "initializerSignature",
    "training_config": "trainingConfig",
}
_KNOWN_KEYS = {*_LEADING.values(), *_TRAILING.values(), "weightsManifest"}


@dataclass
class ModelArtifacts:
    """A model: topology, weight specs and the joined weight bytes, plus TF.js's metadata.

    ``weights()`` decodes the bytes to numpy arrays; ``from_weights`` builds artifacts from them.
    Unknown model.json keys are kept in ``extra`` and saved back unchanged.
    """

    model_topology: dict[str, Any] | None = None
    weight_specs: list[dict[str, Any]] | None = None
    weight_data: bytes | None = None
    format: str | None = None
    generated_by: str | None = None
    converted_by: str | None = None
    signature: dict[str, Any] | None = None
    user_defined_metadata: dict[str, Any] | None = None
    model_initializer: dict[str, Any] | None = None
    initializer_signature: dict[str, Any] | None = None
    training_config: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_weights(
        cls, weights: Mapping[str, Any], model_topology: dict[str, Any] | None = None, **fields: Any
    ) -> ModelArtifacts:
        """Artifacts whose weights are encoded from numpy arrays (like tf.io.encodeWeights)."""
        specs, data = encode_weights(weights)
        return cls(model_topology=model_topology, weight_specs=specs, weight_data=data, **fields)

    def weights(self) -> dict[str, np.ndarray]:
        """The weights as numpy arrays, decoded (and dequantized) as TF.js decodes them."""
        return decode_weights(self.weight_data or b"", self.weight_specs or [])

    @classmethod
    def from_model_json(
        cls, document: Mapping[str, Any], weight_data: bytes | None
    ) -> ModelArtifacts:
        """Artifacts from a parsed model.json and its weight bytes (all files joined)."""
        groups = document.get("weightsManifest")
        specs = None if groups is None else [w for g in groups for w in g.get("weights") or []]
        fields = {
            attribute: document.get(key) for attribute, key in {**_LEADING, **_TRAILING}.items()
        }
        extra = {key: value for key, value in document.items() if key not in _KNOWN_KEYS}
        return cls(weight_specs=specs, weight_data=weight_data, extra=extra, **fields)

    def to_model_json(self, weights_path: str = "./model.weights.bin") -> dict[str, Any]:
        """model.json as tf.io.http writes it: one group, one weights file."""
        document: dict[str, Any] = {}
        for attribute, key in _LEADING.items():
            value = getattr(self, attribute)
            if value is not None or key == "convertedBy":
                document[key] = value
        group: dict[str, Any] = {"paths": [weights_path]}
        if self.weight_specs is not None:
            group["weights"] = self.weight_specs
        document["weightsManifest"] = [group]
        for attribute, key in _TRAILING.items():
            if getattr(self, attribute) is not None:
                document[key] = getattr(self, attribute)
        return {**document, **self.extra}
