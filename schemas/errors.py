"""The one error vocabulary: the error body, every stable code, and each code's HTTP status.

The service answers with these codes and the SDK raises from them; neither keeps a table of
its own. Each code also names its ``ErrorKind``, the family a client reacts to the same way
(the SDK raises one exception class per kind).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    """Every error response: a stable machine ``code`` and a ``message`` that says what to fix."""

    code: str = Field(examples=["model_not_found"])
    message: str


class ErrorKind(StrEnum):
    """How a client should react: fix the request, look elsewhere, wait, or report a bug."""

    INVALID_REQUEST = "invalid_request"
    INVALID_MODEL = "invalid_model"
    NOT_FOUND = "not_found"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    CONFLICT = "conflict"
    TOO_LARGE = "too_large"
    QUOTA_EXCEEDED = "quota_exceeded"
    UNAVAILABLE = "unavailable"
    TOO_MANY_REQUESTS = "too_many_requests"
    SERVER_ERROR = "server_error"


class ErrorCode(StrEnum):
    """Every stable error code. ``code.status`` is its HTTP status, ``code.kind`` its family.

    500 is reserved for failures of the server itself; a client mistake never answers 5xx.
    """

    status: int
    kind: ErrorKind

    def __new__(cls, value: str, status: int, kind: ErrorKind) -> ErrorCode:
        member = str.__new__(cls, value)
        member._value_ = value
        member.status = status
        member.kind = kind
        return member

    INVALID_REQUEST = "invalid_request", 400, ErrorKind.INVALID_REQUEST
    INVALID_MODEL = "invalid_model", 400, ErrorKind.INVALID_MODEL
    WEIGHT_SIZE_MISMATCH = "weight_size_mismatch", 400, ErrorKind.INVALID_MODEL
    BAD_MULTIPART = "bad_multipart", 400, ErrorKind.INVALID_MODEL
    INVALID_NAME = "invalid_name", 400, ErrorKind.INVALID_REQUEST
    INVALID_KEY = "invalid_key", 400, ErrorKind.INVALID_REQUEST
    INVALID_MODEL_URL = "invalid_model_url", 400, ErrorKind.INVALID_REQUEST
    SAME_SOURCE_AND_DESTINATION = "same_source_and_destination", 400, ErrorKind.INVALID_REQUEST
    INVALID_HOST = "invalid_host", 400, ErrorKind.INVALID_REQUEST
    INVALID_ALIAS = "invalid_alias", 400, ErrorKind.INVALID_REQUEST
    INVALID_SCOPE = "invalid_scope", 400, ErrorKind.INVALID_REQUEST
    TENSOR_NOT_NUMERIC = "tensor_not_numeric", 400, ErrorKind.INVALID_REQUEST
    INVALID_VIEW = "invalid_view", 400, ErrorKind.INVALID_REQUEST
    UNAUTHORIZED = "unauthorized", 401, ErrorKind.UNAUTHORIZED
    FORBIDDEN = "forbidden", 403, ErrorKind.FORBIDDEN
    FORBIDDEN_ORIGIN = "forbidden_origin", 403, ErrorKind.FORBIDDEN
    NOT_FOUND = "not_found", 404, ErrorKind.NOT_FOUND
    MODEL_NOT_FOUND = "model_not_found", 404, ErrorKind.NOT_FOUND
    VERSION_NOT_FOUND = "version_not_found", 404, ErrorKind.NOT_FOUND
    WEIGHT_FILE_NOT_FOUND = "weight_file_not_found", 404, ErrorKind.NOT_FOUND
    TENSOR_NOT_FOUND = "tensor_not_found", 404, ErrorKind.NOT_FOUND
    UNKNOWN_STORE = "unknown_store", 404, ErrorKind.NOT_FOUND
    ROUTE_NOT_FOUND = "route_not_found", 404, ErrorKind.NOT_FOUND
    ALIAS_NOT_FOUND = "alias_not_found", 404, ErrorKind.NOT_FOUND
    TOKEN_NOT_FOUND = "token_not_found", 404, ErrorKind.NOT_FOUND
    METHOD_NOT_ALLOWED = "method_not_allowed", 405, ErrorKind.INVALID_REQUEST
    REQUEST_TIMEOUT = "request_timeout", 408, ErrorKind.UNAVAILABLE  # sending again may work
    CONFLICT = "conflict", 409, ErrorKind.CONFLICT
    TOKENS_DISABLED = "tokens_disabled", 409, ErrorKind.CONFLICT
    VERSION_IN_USE = "version_in_use", 409, ErrorKind.CONFLICT
    PRECONDITION_FAILED = "precondition_failed", 412, ErrorKind.CONFLICT
    PAYLOAD_TOO_LARGE = "payload_too_large", 413, ErrorKind.TOO_LARGE
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type", 415, ErrorKind.INVALID_REQUEST
    RANGE_NOT_SATISFIABLE = "range_not_satisfiable", 416, ErrorKind.INVALID_REQUEST
    VALIDATION_ERROR = "validation_error", 422, ErrorKind.INVALID_REQUEST
    TOO_MANY_REQUESTS = "too_many_requests", 429, ErrorKind.TOO_MANY_REQUESTS
    INTERNAL_ERROR = "internal_error", 500, ErrorKind.SERVER_ERROR
    STORAGE_ERROR = "storage_error", 500, ErrorKind.SERVER_ERROR
    INTEGRITY_ERROR = "integrity_error", 500, ErrorKind.SERVER_ERROR
    VERSION_FILES_MISSING = "version_files_missing", 500, ErrorKind.SERVER_ERROR
    STORE_READ_ONLY = "store_read_only", 503, ErrorKind.UNAVAILABLE
    PERMISSION_DENIED = "permission_denied", 503, ErrorKind.UNAVAILABLE
    UNAVAILABLE = "unavailable", 503, ErrorKind.UNAVAILABLE
    QUOTA_EXCEEDED = "quota_exceeded", 507, ErrorKind.QUOTA_EXCEEDED
    INSUFFICIENT_STORAGE = "insufficient_storage", 507, ErrorKind.QUOTA_EXCEEDED

    @classmethod
    def parse(cls, code: object) -> ErrorCode | None:
        """The member for a code string from the wire; None for codes this release lacks."""
        return cls._value2member_map_.get(code) if isinstance(code, str) else None  # type: ignore[return-value]


class CodedError(Exception):
    """Base of every error the server answers with a code: storage, model and HTTP errors."""

    code: ErrorCode = ErrorCode.INTERNAL_ERROR
