"""Model-level errors: lookups extend the backend-neutral tree of ``backends.errors``, refusals
have their own base, ``ModelError``; both are ``schemas.errors.CodedError``::

    StorageError
    ├── NotFoundError
    │   ├── ModelNotFoundError
    │   ├── VersionNotFoundError
    │   ├── WeightFileNotFoundError
    │   ├── TensorNotFoundError        no weight spec of that name in the version
    │   ├── AliasNotFoundError
    │   └── UnknownStoreError
    ├── InvalidKeyError
    │   ├── InvalidNameError           a model name or model URL that cannot be stored
    │   └── InvalidAliasError          an alias name outside [a-z][a-z0-9._-]{0,62}
    ModelError
    ├── InvalidModelError              model.json or its weights break the protocol (§12 3-7)
    │   └── WeightSizeMismatchError    the bytes differ from what the weight specs require
    ├── TensorNotNumericError          statistics of a string tensor
    ├── SameSourceAndDestinationError
    ├── PayloadTooLargeError
    ├── QuotaExceededError
    ├── VersionFilesMissingError       a committed version lost a file (restore or remove it)
    ├── IntegrityError                 a copy arrived with other bytes than were sent
    ├── VersionInUseError              an alias points to the version being removed
    └── PreconditionFailedError        If-Match / If-None-Match did not hold

Every class has a stable ``ErrorCode``, which holds its HTTP status.
"""

from __future__ import annotations

from modelshelf.backends.errors import InvalidKeyError, NotFoundError
from modelshelf.schemas.errors import CodedError, ErrorCode


class ModelNotFoundError(NotFoundError):
    code = ErrorCode.MODEL_NOT_FOUND


class VersionNotFoundError(NotFoundError):
    code = ErrorCode.VERSION_NOT_FOUND


class WeightFileNotFoundError(NotFoundError):
    code = ErrorCode.WEIGHT_FILE_NOT_FOUND


class TensorNotFoundError(NotFoundError):
    code = ErrorCode.TENSOR_NOT_FOUND


class AliasNotFoundError(NotFoundError):
    code = ErrorCode.ALIAS_NOT_FOUND


class UnknownStoreError(NotFoundError):
    code = ErrorCode.UNKNOWN_STORE


class InvalidNameError(InvalidKeyError):
    code = ErrorCode.INVALID_NAME


class InvalidAliasError(InvalidKeyError):
    code = ErrorCode.INVALID_ALIAS


class InvalidModelUrlError(InvalidKeyError):
    code = ErrorCode.INVALID_MODEL_URL


class ModelError(CodedError):
    """A model-level refusal or failure that is not the backend's."""


class InvalidModelError(ModelError, ValueError):
    code = ErrorCode.INVALID_MODEL


class WeightSizeMismatchError(InvalidModelError):
    code = ErrorCode.WEIGHT_SIZE_MISMATCH


class InvalidViewError(ModelError, ValueError):
    """quantize= or shard_bytes= asks for a view that cannot be made."""

    code = ErrorCode.INVALID_VIEW


class TensorNotNumericError(ModelError, ValueError):
    """Statistics need numbers: a string tensor has none."""

    code = ErrorCode.TENSOR_NOT_NUMERIC


class SameSourceAndDestinationError(ModelError, ValueError):
    code = ErrorCode.SAME_SOURCE_AND_DESTINATION


class PayloadTooLargeError(ModelError):
    code = ErrorCode.PAYLOAD_TOO_LARGE


class QuotaExceededError(ModelError):
    code = ErrorCode.QUOTA_EXCEEDED


class IntegrityError(ModelError):
    code = ErrorCode.INTEGRITY_ERROR


class VersionFilesMissingError(ModelError):
    code = ErrorCode.VERSION_FILES_MISSING


class VersionInUseError(ModelError):
    """A version an alias points to cannot be removed; move or delete the alias first."""

    code = ErrorCode.VERSION_IN_USE


class PreconditionFailedError(ModelError):
    """A conditional request (If-Match, If-None-Match) found another state than it named."""

    code = ErrorCode.PRECONDITION_FAILED
