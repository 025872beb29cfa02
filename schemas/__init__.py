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
from modelshelf.schemas.errors import CodedError, ErrorBody, ErrorCode, ErrorKind
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
    "CodedError",
    "Dtype",
    "ErrorBody",
    "ErrorCode",
    "ErrorKind",
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
