"""Pydantic wire models shared by the service and the SDK."""

from modelshelf.schemas.artifacts import (
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
from modelshelf.schemas.errors import ERROR_STATUS, ErrorBody
from modelshelf.schemas.versions import (
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
