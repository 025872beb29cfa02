"""Model-level errors, extending the backend-neutral tree of ``backends.errors``::

    StorageError
    ├── NotFoundError
    │   ├── ModelNotFoundError
    │   ├── VersionNotFoundError
    │   ├── WeightFileNotFoundError
    │   └── UnknownStoreError
    ├── InvalidKeyError
    │   └── InvalidNameError           a model name or model URL that cannot be stored
    ├── InvalidModelError              model.json or its weights break the protocol (§12 3-7)
    │   └── WeightSizeMismatchError    the bytes differ from what the weight specs require
    ├── SameSourceAndDestinationError
    ├── PayloadTooLargeError
    ├── QuotaExceededError
    ├── VersionFilesMissingError       a committed version lost a file (restore or remove it)
    └── IntegrityError                 a copy arrived with other bytes than were sent

Every class has a stable ``code``; ``schemas.errors.ERROR_STATUS`` maps codes to HTTP.
"""

from __future__ import annotations

from modelshelf.backends.errors import InvalidKeyError, NotFoundError, StorageError


class ModelNotFoundError(NotFoundError):
    code = "model_not_found"


class VersionNotFoundError(NotFoundError):
    code = "version_not_found"


class WeightFileNotFoundError(NotFoundError):
    code = "weight_file_not_found"


class UnknownStoreError(NotFoundError):
    code = "unknown_store"


class InvalidNameError(InvalidKeyError):
    code = "invalid_name"


class InvalidModelUrlError(InvalidKeyError):
    code = "invalid_model_url"


class InvalidModelError(StorageError, ValueError):
    code = "invalid_model"


class WeightSizeMismatchError(InvalidModelError):
    code = "weight_size_mismatch"


class SameSourceAndDestinationError(StorageError, ValueError):
    code = "same_source_and_destination"


class PayloadTooLargeError(StorageError):
    code = "payload_too_large"


class QuotaExceededError(StorageError):
    code = "quota_exceeded"


class IntegrityError(StorageError):
    code = "integrity_error"


class VersionFilesMissingError(StorageError):
    code = "version_files_missing"
