"""The one error body and its stable codes, shared by the service and the SDK."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    """Every error response: a stable machine ``code`` and a ``message`` that says what to fix."""

    code: str = Field(examples=["model_not_found"])
    message: str


# code -> HTTP status: the wire contract, read by the service (to answer) and the SDK (to raise).
ERROR_STATUS: dict[str, int] = {
    "invalid_request": 400,
    "invalid_model": 400,
    "weight_size_mismatch": 400,
    "bad_multipart": 400,
    "invalid_name": 400,
    "invalid_key": 400,
    "invalid_model_url": 400,
    "same_source_and_destination": 400,
    "not_found": 404,
    "model_not_found": 404,
    "version_not_found": 404,
    "weight_file_not_found": 404,
    "unknown_store": 404,
    "route_not_found": 404,
    "method_not_allowed": 405,
    "request_timeout": 408,
    "conflict": 409,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "validation_error": 422,
    "internal_error": 500,
    "storage_error": 500,
    "integrity_error": 500,
    "version_files_missing": 500,
    "store_read_only": 503,
    "permission_denied": 503,
    "unavailable": 503,
    "unknown_backend_scheme": 500,
    "quota_exceeded": 507,
    "insufficient_storage": 507,
}
