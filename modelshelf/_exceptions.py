"""Exceptions the SDK raises, mapped from the service's ``(status, code)`` answers::

ModelshelfError                  every SDK error: .status, .code, .message
├── NotFoundError                404: no such model, version, weight file or store
├── InvalidRequestError          400/405/415/422: the request was wrong
│   └── InvalidModelError        model.json or its weights break the TF.js protocol
├── ConflictError                409
├── TooLargeError                413: over the server's body limit
├── QuotaExceededError           507: the store's quota (or medium) is full
├── UnavailableError             503 (a store is down or read-only), 408 (the upload stalled),
│                                or the server cannot be reached
└── ServerError                  500: a server fault; its log says more
"""

from __future__ import annotations

from typing import Any


class ModelshelfError(Exception):
    """An error answered by (or reaching) the modelshelf server."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


class NotFoundError(ModelshelfError):
    """The model, version, weight file or store does not exist."""


class InvalidRequestError(ModelshelfError):
    """The request was malformed; the message says what to fix."""


class InvalidModelError(InvalidRequestError):
    """model.json or the weight bytes break the TF.js protocol."""


class ConflictError(ModelshelfError):
    """The request conflicts with the current state."""


class TooLargeError(ModelshelfError):
    """The upload is over the server's size limit."""


class QuotaExceededError(ModelshelfError):
    """The store's byte quota, or its medium, is full."""


class UnavailableError(ModelshelfError):
    """The server, or a backend behind it, cannot be reached."""


class ServerError(ModelshelfError):
    """The server failed; its log has the details."""


_BY_CODE: dict[str, type[ModelshelfError]] = {
    "invalid_model": InvalidModelError,
    "weight_size_mismatch": InvalidModelError,
    "bad_multipart": InvalidModelError,
    "quota_exceeded": QuotaExceededError,
    "insufficient_storage": QuotaExceededError,
}
_BY_STATUS: dict[int, type[ModelshelfError]] = {
    400: InvalidRequestError,
    404: NotFoundError,
    405: InvalidRequestError,
    408: UnavailableError,  # request_timeout: the upload stalled; sending again may work
    409: ConflictError,
    413: TooLargeError,
    415: InvalidRequestError,
    422: InvalidRequestError,
    503: UnavailableError,
    507: QuotaExceededError,
}


def error_for(status: int, body: Any) -> ModelshelfError:
    """The exception for an error response; ``body`` is its parsed JSON, if any."""
    code = body.get("code") if isinstance(body, dict) else None
    message = body.get("message") if isinstance(body, dict) else None
    kind = _BY_CODE.get(code or "") or _BY_STATUS.get(status) or ServerError
    return kind(message or f"the server answered HTTP {status}", status=status, code=code)
