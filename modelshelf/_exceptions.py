"""Exceptions the SDK raises, one per ``ErrorKind`` of the service's ``ErrorCode``::

ModelshelfError                  every SDK error: .status, .code, .message
├── NotFoundError                404: no such model, version, weight file or store
├── InvalidRequestError          400/405/415/422: the request was wrong
│   └── InvalidModelError        model.json or its weights break the TF.js protocol
├── UnauthorizedError            401: no token, or one that is malformed, expired or revoked
├── ForbiddenError               403: not allowed (an origin, or a token's scopes)
├── ConflictError                409
├── TooLargeError                413: over the server's body limit
├── QuotaExceededError           507: the store's quota (or medium) is full
├── UnavailableError             503 (a store is down or read-only), 408 (the upload stalled),
│                                or the server cannot be reached
├── TooManyRequestsError         429: too many failed attempts; .retry_after says when to retry
└── ServerError                  500: a server fault; its log says more
"""

from __future__ import annotations

from typing import Any

from modelshelf.schemas.errors import ErrorCode, ErrorKind


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


class UnauthorizedError(ModelshelfError):
    """No token was sent, or the token is malformed, expired or revoked."""


class ForbiddenError(ModelshelfError):
    """The server refused the request as not allowed (an origin or, with tokens, a scope)."""


class ConflictError(ModelshelfError):
    """The request conflicts with the current state."""


class TooLargeError(ModelshelfError):
    """The upload is over the server's size limit."""


class QuotaExceededError(ModelshelfError):
    """The store's byte quota, or its medium, is full."""


class UnavailableError(ModelshelfError):
    """The server, or a backend behind it, cannot be reached."""


class TooManyRequestsError(ModelshelfError):
    """Too many failed attempts from this address; wait ``retry_after`` seconds."""

    retry_after: float | None = None


class ServerError(ModelshelfError):
    """The server failed; its log has the details."""


_BY_KIND: dict[ErrorKind, type[ModelshelfError]] = {
    ErrorKind.INVALID_REQUEST: InvalidRequestError,
    ErrorKind.INVALID_MODEL: InvalidModelError,
    ErrorKind.NOT_FOUND: NotFoundError,
    ErrorKind.UNAUTHORIZED: UnauthorizedError,
    ErrorKind.FORBIDDEN: ForbiddenError,
    ErrorKind.CONFLICT: ConflictError,
    ErrorKind.TOO_LARGE: TooLargeError,
    ErrorKind.QUOTA_EXCEEDED: QuotaExceededError,
    ErrorKind.UNAVAILABLE: UnavailableError,
    ErrorKind.TOO_MANY_REQUESTS: TooManyRequestsError,
    ErrorKind.SERVER_ERROR: ServerError,
}


def error_for(status: int, body: Any, retry_after: str | None = None) -> ModelshelfError:
    """The exception for an error response; ``body`` is its parsed JSON, if any."""
    code = body.get("code") if isinstance(body, dict) else None
    message = body.get("message") if isinstance(body, dict) else None
    known = ErrorCode.parse(code)
    kind = _BY_KIND[known.kind] if known else _without_code(status)
    error = kind(message or f"the server answered HTTP {status}", status=status, code=code)
    if isinstance(error, TooManyRequestsError) and retry_after and retry_after.isdigit():
        error.retry_after = float(retry_after)
    return error


def _without_code(status: int) -> type[ModelshelfError]:
    """An answer with no code this SDK knows: a proxy's, or a newer server's new code."""
    if status in (404, 410):
        return NotFoundError
    if status == 401:
        return UnauthorizedError
    if status == 403:
        return ForbiddenError
    if status == 429:
        return TooManyRequestsError
    if status in (408, 502, 503, 504):
        return UnavailableError
    if status == 413:
        return TooLargeError
    if 400 <= status < 500:
        return InvalidRequestError
    return ServerError
