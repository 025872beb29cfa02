"""modelshelf: a self-hosted model store that speaks TensorFlow.js's save/load protocol.

The SDK mirrors ``tf.io``: ``save``, ``load``, ``list_models``, ``remove_model``,
``copy_model``, ``move_model``, with weights as numpy arrays::

    import modelshelf
    with modelshelf.Client("http://127.0.0.1:8000") as shelf:
        artifacts = shelf.load("indexeddb://my-model")
        weights = artifacts.weights()            # {"dense/kernel": np.ndarray, ...}

With ``MODELSHELF_AUTH=tokens`` the client sends ``token=`` (or ``MODELSHELF_TOKEN``); an
admin issues tokens with ``create_token`` and anyone who may read a model hands out a
read-only link to it with ``share``, which ``load`` (or TF.js) reads with no other token.
An admin frees what killed saves left behind with ``gc``.
"""

from modelshelf._artifacts import ModelArtifacts
from modelshelf._client import AsyncClient, Client
from modelshelf._exceptions import (
    ConflictError,
    ForbiddenError,
    InvalidModelError,
    InvalidRequestError,
    ModelshelfError,
    NotFoundError,
    QuotaExceededError,
    ServerError,
    TooLargeError,
    TooManyRequestsError,
    UnauthorizedError,
    UnavailableError,
)
from modelshelf._weights import decode_weights, encode_weights
from modelshelf.schemas.artifacts import ModelArtifactsInfo, SaveResult
from modelshelf.schemas.maintenance import GcReport
from modelshelf.schemas.tokens import CreatedToken, ShareLink, TokenInfo
from modelshelf.schemas.versions import ModelInfo, PruneResult, VersionInfo

__version__ = "0.1.0"
__all__ = [
    "AsyncClient",
    "Client",
    "ConflictError",
    "CreatedToken",
    "ForbiddenError",
    "GcReport",
    "InvalidModelError",
    "InvalidRequestError",
    "ModelArtifacts",
    "ModelArtifactsInfo",
    "ModelInfo",
    "ModelshelfError",
    "NotFoundError",
    "PruneResult",
    "QuotaExceededError",
    "SaveResult",
    "ServerError",
    "ShareLink",
    "TokenInfo",
    "TooLargeError",
    "TooManyRequestsError",
    "UnauthorizedError",
    "UnavailableError",
    "VersionInfo",
    "__version__",
    "decode_weights",
    "encode_weights",
]
