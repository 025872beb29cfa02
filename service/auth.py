"""Tokens on the wire: who is asking (a middleware), and what each route lets them do.

``TokenAuthMiddleware`` reads the token of every request that is not public and leaves
the ``Grant`` it carries in ``request.state.grant``; refusals (401, 429) happen there, before
any route runs. Routes then ask the grant for the scope they need (``Grant.require``, 403).
The ``Security`` dependencies below carry no logic: they declare the schemes in OpenAPI,
so generated clients send the token.

TF.js copies model.json's query string onto every weight URL (protocol doc §5), so
``?token=`` works where a loader sends it: GET and HEAD of model.json, weight files, exports.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyQuery, HTTPBearer
from starlette.datastructures import Headers, QueryParams
from starlette.types import ASGIApp, Receive, Scope, Send

from modelshelf.access import (
    EVERYTHING,
    NOTHING,
    FailedAttempts,
    Grant,
    TokenRegistry,
    UnauthorizedError,
)
from modelshelf.schemas.errors import CodedError, ErrorCode
from modelshelf.service.errors import HttpError, response_for

PUBLIC_PATHS = frozenset(
    {"/healthz", "/readyz", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
)
DOCS_ASSETS = "/docs-assets"  # Swagger UI's and ReDoc's scripts, from fastapi-offline
_NO_TOKEN = (
    "this server needs a token: send 'Authorization: Bearer TOKEN' (or ?token=TOKEN when "
    "loading model.json, weight files or exports); an admin creates tokens with "
    "'modelshelf token create'"
)


class RegistryHolder:
    """The registry ``lifespan`` opens, for the middleware, which is built before it runs."""

    registry: TokenRegistry | None = None


class TokenAuthMiddleware:
    """Authenticates every non-public request; with tokens off, grants everything."""

    def __init__(
        self,
        app: ASGIApp,
        tokens_on: bool,
        auth: RegistryHolder,
        attempts: FailedAttempts,
        token_optional: Callable[[str], bool] = lambda path: False,
        public_paths: frozenset[str] = PUBLIC_PATHS,
    ) -> None:
        self.app = app
        self.tokens_on = tokens_on
        self.token_optional = token_optional
        self.auth = auth
        self.attempts = attempts
        self.public_paths = public_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._is_public(scope["path"]):
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        try:
            state["grant"], state["token_in_query"] = await self._grant(scope, scope["path"])
        except CodedError as error:  # a refusal, or the auth store being unavailable
            await response_for(error)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _is_public(self, path: str) -> bool:
        return path in self.public_paths or path.startswith(f"{DOCS_ASSETS}/")

    async def _grant(self, scope: Scope, path: str) -> tuple[Grant, bool]:
        if not self.tokens_on:
            return EVERYTHING, False
        registry = self.auth.registry
        if registry is None:  # fail closed: never grant before the registry is open
            raise HttpError(ErrorCode.UNAVAILABLE, "the server is starting; retry in a moment")
        token, in_query = presented_token(scope)
        if token is None and self.token_optional(path):
            return NOTHING, False  # a console page: it asks for the token itself
        if token is None:
            raise UnauthorizedError(_NO_TOKEN)
        client = scope["client"][0] if scope.get("client") else "unknown"
        self.attempts.check(client)
        try:
            return await registry.authenticate(token), in_query
        except UnauthorizedError:
            self.attempts.record_failure(client)
            raise


def presented_token(scope: Scope) -> tuple[str | None, bool]:
    """The request's token and whether it came in the query string."""
    authorization = Headers(scope=scope).get("authorization")
    if authorization is not None:
        kind, _, bearer = authorization.partition(" ")
        if kind.lower() != "bearer" or not bearer.strip():
            raise UnauthorizedError(
                "the Authorization header must read 'Bearer TOKEN' (no other scheme is used)"
            )
        return bearer.strip(), False
    in_query = QueryParams(scope["query_string"]).get("token")
    return (in_query, True) if in_query else (None, False)


bearer_token = HTTPBearer(
    auto_error=False,
    scheme_name="bearerToken",
    description="A token from POST /v1/tokens, or the admin token",
)
query_token = APIKeyQuery(
    name="token",
    auto_error=False,
    scheme_name="tokenQuery",
    description="The same token in the query: what share links and TF.js loaders send",
)


def _grant(request: Request) -> Grant:
    grant: Grant = request.state.grant
    return grant


async def header_grant(
    request: Request, _bearer: Annotated[object, Security(bearer_token)]
) -> Grant:
    """The grant of a request that must carry its token in the Authorization header."""
    if request.state.token_in_query:
        raise UnauthorizedError(
            "?token= works only on GET and HEAD of model.json, weight files and exports; "
            "send this request's token as 'Authorization: Bearer TOKEN'"
        )
    return _grant(request)


async def load_grant(
    request: Request,
    _bearer: Annotated[object, Security(bearer_token)],
    _query: Annotated[object, Security(query_token)],
) -> Grant:
    """The grant of a load (GET), whose token may come in the query string."""
    return _grant(request)


GrantDep = Annotated[Grant, Depends(header_grant)]
LoadGrantDep = Annotated[Grant, Depends(load_grant)]
