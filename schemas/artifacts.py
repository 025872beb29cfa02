"""TF.js's own data model, with TF.js's field names on the wire (protocol doc §1-§3)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

Dtype = Literal["float32", "int32", "bool", "string", "complex64"]
QuantizationDtype = Literal["uint8", "uint16", "float16"]
Number = StrictInt | StrictFloat
Dimension = Annotated[StrictInt, Field(ge=0)]


class _WireModel(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Quantization(_WireModel):
    """How a weight's bytes encode its values; uint8/uint16 need ``min`` and ``scale``."""

    dtype: QuantizationDtype
    min: Number | None = None
    scale: Number | None = None


class WeightsManifestEntry(_WireModel):
    """One tensor in the weight stream."""

    name: StrictStr
    shape: list[Dimension]
    dtype: Dtype
    group: StrictStr | None = None
    quantization: Quantization | None = None


class WeightsManifestGroup(_WireModel):
    """Files (``paths``) holding the bytes of ``weights``, in order."""

    paths: list[StrictStr]
    weights: list[WeightsManifestEntry] = Field(default_factory=list)


class ModelJSON(_WireModel):
    """The ``model.json`` file. Unknown keys are kept as they are."""

    modelTopology: dict[str, Any] | None = None
    weightsManifest: list[WeightsManifestGroup] | None = None
    format: str | None = None
    generatedBy: str | None = None
    convertedBy: str | None = None
    signature: dict[str, Any] | None = None
    userDefinedMetadata: dict[str, Any] | None = None
    modelInitializer: dict[str, Any] | None = None
    initializerSignature: dict[str, Any] | None = None
    trainingConfig: dict[str, Any] | None = None


class ModelArtifacts(_WireModel):
    """What TF.js IO handlers exchange, with ``weightData`` as base64 (standard alphabet)."""

    modelTopology: dict[str, Any] | None = None
    weightSpecs: list[WeightsManifestEntry] | None = None
    weightData: str | None = Field(
        default=None, description="All weight bytes joined, base64-encoded (standard alphabet)."
    )
    format: str | None = None
    generatedBy: str | None = None
    convertedBy: str | None = None
    signature: dict[str, Any] | None = None
    userDefinedMetadata: dict[str, Any] | None = None
    modelInitializer: dict[str, Any] | None = None
    initializerSignature: dict[str, Any] | None = None
    trainingConfig: dict[str, Any] | None = None


class ModelArtifactsInfo(BaseModel):
    """Sizes and date of a saved model, computed exactly as TF.js computes them (§3)."""

    dateSaved: str = Field(description="ISO 8601, YYYY-MM-DDTHH:mm:ss.sssZ")
    modelTopologyType: Literal["JSON"] = "JSON"
    modelTopologyBytes: int
    weightSpecsBytes: int
    weightDataBytes: int


class SaveResult(BaseModel):
    """The answer to a save: what TF.js would report, plus where the model now lives."""

    modelArtifactsInfo: ModelArtifactsInfo
    modelUrl: str = Field(description="The model's URL as TF.js writes it, e.g. indexeddb://a")
    versionId: str
    loadUrl: str | None = Field(default=None, description="URL of the saved version's model.json")
