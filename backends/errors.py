"""The backend-neutral error tree.

Every backend translates its native errors (``OSError``, ``sqlite3.Error``,
botocore's ``ClientError``) into these at its edge, so nothing above
``backends/`` ever sees a native error::

    StorageError
    ├── NotFoundError            (also a FileNotFoundError)
    ├── InvalidKeyError          (also a ValueError)
    ├── PermissionDeniedError    (also a PermissionError)
    ├── InsufficientStorageError the medium is full
    └── UnavailableError         (also a ConnectionError) the backend cannot be reached
        └── ReadOnlyStoreError   the medium is read-only: loads work, saves cannot

Each class carries a stable machine ``code``; the service maps classes to HTTP
statuses in one table.
"""

from __future__ import annotations


class StorageError(Exception):
    """Base class of every error a backend raises."""

    code = "storage_error"


class NotFoundError(StorageError, FileNotFoundError):
    """The key does not exist."""

    code = "not_found"


class InvalidKeyError(StorageError, ValueError):
    """The key could escape the store or is not storable (``..``, NUL, too long)."""

    code = "invalid_key"


class PermissionDeniedError(StorageError, PermissionError):
    """The backend refused the operation for lack of rights."""

    code = "permission_denied"


class InsufficientStorageError(StorageError):
    """The medium is full (disk full, bucket quota)."""

    code = "insufficient_storage"


class UnavailableError(StorageError, ConnectionError):
    """The backend cannot be reached or answered with a server-side failure."""

    code = "unavailable"


class ReadOnlyStoreError(UnavailableError):
    """The medium is mounted or opened read-only; reads still work."""

    code = "store_read_only"
