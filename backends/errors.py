"""The backend-neutral error tree.

Every backend translates its native errors (``OSError``, ``sqlite3.Error``,
botocore's ``ClientError``) into these at its edge, so nothing above
``backends/`` ever sees a native error::

    StorageError
    ├── NotFoundError            (also a FileNotFoundError)
    ├── InvalidKeyError          (also a ValueError)
    ├── InvalidRangeError        (also a ValueError) a byte range that reads nothing
    ├── PermissionDeniedError    (also a PermissionError)
    ├── InsufficientStorageError the medium is full
    └── UnavailableError         (also a ConnectionError) the backend cannot be reached
        └── ReadOnlyStoreError   the medium is read-only: loads work, saves cannot

Each class carries its stable ``ErrorCode`` (``schemas.errors``), which holds its HTTP status.
"""

from __future__ import annotations

from modelshelf.schemas.errors import CodedError, ErrorCode


class StorageError(CodedError):
    """Base class of every error a backend raises."""

    code = ErrorCode.STORAGE_ERROR


class NotFoundError(StorageError, FileNotFoundError):
    """The key does not exist."""

    code = ErrorCode.NOT_FOUND


class PreconditionFailedError(StorageError):
    """A conditional put found the key in another state than its mode required."""

    code = ErrorCode.PRECONDITION_FAILED


class InvalidKeyError(StorageError, ValueError):
    """The key could escape the store or is not storable (``..``, NUL, too long)."""

    code = ErrorCode.INVALID_KEY


class InvalidRangeError(StorageError, ValueError):
    """A ranged get that reads nothing: empty, negative, or starting past the value's end."""

    code = ErrorCode.RANGE_NOT_SATISFIABLE


class PermissionDeniedError(StorageError, PermissionError):
    """The backend refused the operation for lack of rights."""

    code = ErrorCode.PERMISSION_DENIED


class InsufficientStorageError(StorageError):
    """The medium is full (disk full, bucket quota)."""

    code = ErrorCode.INSUFFICIENT_STORAGE


class UnavailableError(StorageError, ConnectionError):
    """The backend cannot be reached or answered with a server-side failure."""

    code = ErrorCode.UNAVAILABLE


class ReadOnlyStoreError(UnavailableError):
    """The medium is mounted or opened read-only; reads still work."""

    code = ErrorCode.STORE_READ_ONLY
