"""Pydantic wire models shared by the service and the SDK."""

from schemas.artifacts import (
    Dtype,
    ModelArtifacts,
    ModelArtifactsInfo,
    ModelJSON,
    Quantization,
    QuantizationDtype,
    SaveResult,
    WeightsManifestEntry,
    WeightsManifestGroup,
)
from schemas.errors import ERROR_STATUS, ErrorBody
from schemas.versions import (
    ModelInfo,
    ModelList,
    StoredFile,
    StoreInfo,
    StoreList,
    TransferRequest,
    VersionInfo,
)

__all__ = [
    "ERROR_STATUS",
    "Dtype",
    "ErrorBody",
    "ModelArtifacts",
    "ModelArtifactsInfo",
    "ModelInfo",
    "ModelJSON",
    "ModelList",
    "Quantization",
    "QuantizationDtype",
    "SaveResult",
    "StoreInfo",
    "StoreList",
    "StoredFile",
    "TransferRequest",
    "VersionInfo",
    "WeightsManifestEntry",
    "WeightsManifestGroup",
]
