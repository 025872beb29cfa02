"""Every error becomes one JSON shape, ``{"code", "message"}``, its status from its ErrorCode.

``schemas.errors.ErrorCode`` is the one vocabulary: the SDK raises from the same codes.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelshelf.access import TooManyAttemptsError
from modelshelf.schemas.errors import CodedError, ErrorCode
from modelshelf.service.metrics import count_backend_error
from modelshelf.service.routing import allowed_methods

logger = logging.getLogger("modelshelf")


class HttpError(CodedError):
    """An error of the HTTP layer itself (framing, routing, timeouts): not a storage error."""

    def __init__(
        self, code: ErrorCode, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.headers = headers or {}


# RFC 6750: a 401 names the scheme that would have worked.
_CHALLENGES = {ErrorCode.UNAUTHORIZED: {"WWW-Authenticate": 'Bearer realm="modelshelf"'}}


def error_response(
    code: ErrorCode, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"code": code.value, "message": message},
        status_code=code.status,
        headers={**_CHALLENGES.get(code, {}), **(headers or {})},
    )


def response_for(error: Exception) -> JSONResponse:
    """The JSON error response for any exception the app lets out."""
    if isinstance(error, HttpError):
        return error_response(error.code, str(error), error.headers)
    if isinstance(error, TooManyAttemptsError):
        retry_after = {"Retry-After": str(error.retry_after_seconds)}
        return error_response(error.code, str(error), retry_after)
    if isinstance(error, CodedError):
        count_backend_error(error.code)  # every error answer passes here, once
        if error.code.status >= 500:
            logger.warning("%s: %s", error.code.value, error)
        return error_response(error.code, str(error))
    if isinstance(error, ClientDisconnect):
        return error_response(
            ErrorCode.INVALID_REQUEST, "the client disconnected before the body ended"
        )
    logger.exception("unexpected error", exc_info=error)
    return error_response(ErrorCode.INTERNAL_ERROR, "the server failed unexpectedly; see its log")


_HTTP_CODES = {
    404: ErrorCode.ROUTE_NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
}


async def _http_exception(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    code = _HTTP_CODES.get(error.status_code, ErrorCode.INVALID_REQUEST)
    headers = dict(error.headers or {})
    if error.status_code == 405:
        # Starlette names only the first route that matched the path; list them all.
        headers["Allow"] = ", ".join(allowed_methods(request.app.routes, request.scope))
        error = HTTPException(405, error.detail, headers)
    message = _http_message(request, error)
    response = error_response(code, message, headers)
    response.status_code = error.status_code
    return response


def _http_message(request: Request, error: HTTPException) -> str:
    if error.status_code == 404:
        return f"no route for {request.url.path}; see /docs for the API"
    if error.status_code == 405:
        allowed = (error.headers or {}).get("Allow", "")
        return f"{request.method} is not allowed here; use one of: {allowed}"
    return str(error.detail)


async def _validation_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    problems = [
        f"{'.'.join(str(part) for part in item['loc'])}: {item['msg']}" for item in error.errors()
    ]
    message = "; ".join(problems[:5]) or "invalid request"
    return error_response(ErrorCode.VALIDATION_ERROR, message)


async def _known_error(request: Request, error: Exception) -> Response:
    return response_for(error)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(HTTPException, _http_exception)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(CodedError, _known_error)
    app.add_exception_handler(ClientDisconnect, _known_error)


class InternalErrorMiddleware:
    """Turns an unexpected exception into the JSON 500 *inside* the CORS middleware.

    Starlette answers unhandled errors in its outermost layer, where CORS headers are
    never added; browsers would then report a network error instead of the status.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as error:
            if started:
                raise
            await response_for(error)(scope, receive, send)


def error_responses(*codes: ErrorCode) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries documenting the error body for some codes."""
    from modelshelf.schemas.errors import ErrorBody

    documented: dict[int | str, dict[str, Any]] = {}
    # validation_error replaces FastAPI's default 422 schema, which our handler never sends.
    for code in (*codes, ErrorCode.VALIDATION_ERROR):
        entry = documented.setdefault(code.status, {"model": ErrorBody, "description": ""})
        entry["description"] = ", ".join(filter(None, [entry["description"], code.value]))
    return documented
