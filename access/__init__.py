"""Who may do what: scoped tokens, their registry on a shared backend, and failed-attempt limits.

Sits between the service and the model layer. It knows tokens and scopes, never HTTP:
the service reads a token off a request, asks ``TokenRegistry.authenticate`` for the
``Grant`` it carries, and asks the grant before each operation (``Grant.require``).
"""

from modelshelf.access.errors import (
    AccessError,
    ForbiddenError,
    InvalidScopeError,
    TokenNotFoundError,
    TooManyAttemptsError,
    UnauthorizedError,
)
from modelshelf.access.registry import TokenRegistry, open_token_registry
from modelshelf.access.scopes import EVERYTHING, NOTHING, Action, Grant, Scope
from modelshelf.access.throttle import FailedAttempts
from modelshelf.access.tokens import TokenRecord

__all__ = [
    "EVERYTHING",
    "NOTHING",
    "AccessError",
    "Action",
    "FailedAttempts",
    "ForbiddenError",
    "Grant",
    "InvalidScopeError",
    "Scope",
    "TokenNotFoundError",
    "TokenRecord",
    "TokenRegistry",
    "TooManyAttemptsError",
    "UnauthorizedError",
    "open_token_registry",
]
