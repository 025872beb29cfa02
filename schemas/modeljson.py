"""ModelArtifacts <-> model.json: the one conversion, shared by the service and the SDK.

Keys and their order are those of TF.js's ``getModelJSONForModelArtifacts`` and
``getModelArtifactsForJSON`` (protocol doc §2.1): the leading keys, one weights group, then the
optional keys; keys TF.js does not know are kept, after those.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

HTTP_WEIGHTS_PATH = "./model.weights.bin"  # the one weights file tf.io.http sends
LEADING_KEYS = ("modelTopology", "format", "generatedBy", "convertedBy")
TRAILING_KEYS = (
    "signature",
    "userDefinedMetadata",
    "modelInitializer",
    "initializerSignature",
    "trainingConfig",
)
ARTIFACT_KEYS = frozenset({*LEADING_KEYS, *TRAILING_KEYS, "weightSpecs", "weightData"})
MODEL_JSON_KEYS = frozenset({*LEADING_KEYS, *TRAILING_KEYS, "weightsManifest"})


def model_json_for(
    fields: Mapping[str, Any],
    weight_specs: Sequence[Mapping[str, Any]] | None,
    weights_path: str = HTTP_WEIGHTS_PATH,
) -> dict[str, Any]:
    """model.json for artifacts (camelCase ``fields``), all weights in one file.

    A known key whose value is None is left out, except ``convertedBy``, which TF.js always
    writes. ``weightSpecs`` and ``weightData`` in ``fields`` are ignored.
    """
    document: dict[str, Any] = {}
    for key in LEADING_KEYS:
        if fields.get(key) is not None or key == "convertedBy":
            document[key] = fields.get(key)
    group: dict[str, Any] = {"paths": [weights_path]}
    if weight_specs is not None:
        group["weights"] = list(weight_specs)
    document["weightsManifest"] = [group]
    for key in TRAILING_KEYS:
        if fields.get(key) is not None:
            document[key] = fields[key]
    for key, value in fields.items():
        if key not in document and key not in ARTIFACT_KEYS:
            document[key] = value
    return document


def artifact_fields_of(document: Mapping[str, Any]) -> tuple[dict[str, Any], list[Any] | None]:
    """A parsed model.json -> (its fields but the manifest, its weight specs in order).

    The specs are every group's weights joined, as ``getModelArtifactsForJSON`` joins them;
    None when model.json has no ``weightsManifest``.
    """
    groups = document.get("weightsManifest")
    specs = None if groups is None else [w for g in groups for w in g.get("weights") or []]
    fields = {key: value for key, value in document.items() if key != "weightsManifest"}
    return fields, specs
