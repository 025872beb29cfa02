"""Refusals of the access layer, each with its stable ``ErrorCode``::

AccessError
├── UnauthorizedError       no token, or a malformed, unknown, expired or revoked one (401)
├── ForbiddenError          a valid token without the scope an operation needs (403)
├── InvalidScopeError       a scope that breaks ACTION:STORE[/NAME] (400)
├── TokenNotFoundError      no token has this id (404)
├── TokensDisabledError     tokens are off (MODELSHELF_AUTH=none) (409)
└── TooManyAttemptsError    too many failed attempts from one address (429)
"""

from __future__ import annotations

from modelshelf.schemas.errors import CodedError, ErrorCode


class AccessError(CodedError):
    """Base of the access layer's refusals."""


class UnauthorizedError(AccessError):
    code = ErrorCode.UNAUTHORIZED


class ForbiddenError(AccessError):
    code = ErrorCode.FORBIDDEN


class InvalidScopeError(AccessError):
    code = ErrorCode.INVALID_SCOPE


class TokenNotFoundError(AccessError):
    code = ErrorCode.TOKEN_NOT_FOUND


class TokensDisabledError(AccessError):
    code = ErrorCode.TOKENS_DISABLED


class TooManyAttemptsError(AccessError):
    code = ErrorCode.TOO_MANY_REQUESTS

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds
