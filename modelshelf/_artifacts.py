"""``ModelArtifacts`` in Python's idiom: what TF.js's IO handlers exchange (protocol doc §1)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelshelf._weights import decode_weights, encode_weights
from modelshelf.schemas.modeljson import (
    HTTP_WEIGHTS_PATH,
    MODEL_JSON_KEYS,
    artifact_fields_of,
    model_json_for,
)

# Python attribute -> model.json key; the keys and their order are modelshelf.schemas.modeljson's.
_FIELDS = {
    "model_topology": "modelTopology",
    "format": "format",
    "generated_by": "generatedBy",
    "converted_by": "convertedBy",
    "signature": "signature",
    "user_defined_metadata": "userDefinedMetadata",
    "model_initializer": "modelInitializer",
    "initializer_signature": "initializerSignature",
    "training_config": "trainingConfig",
}


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
        fields, specs = artifact_fields_of(document)
        known = {attribute: fields.get(key) for attribute, key in _FIELDS.items()}
        extra = {key: value for key, value in fields.items() if key not in MODEL_JSON_KEYS}
        return cls(weight_specs=specs, weight_data=weight_data, extra=extra, **known)

    def to_model_json(self, weights_path: str = HTTP_WEIGHTS_PATH) -> dict[str, Any]:
        """model.json as tf.io.http writes it: one group, one weights file."""
        fields = {key: getattr(self, attribute) for attribute, key in _FIELDS.items()}
        return model_json_for({**fields, **self.extra}, self.weight_specs, weights_path)
