"""The FastAPI application: stores opened in ``lifespan``, routes, CORS, one error shape."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import FastAPI, Request
from fastapi_offline import FastAPIOffline
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from modelshelf.access import FailedAttempts, TokenRegistry, open_token_registry
from modelshelf.modelstore import Shelf
from modelshelf.modelstore.layout import ALIAS_PATTERN, MODEL_NAME_PATTERN, validate_model_name
from modelshelf.modelstore.opening import StoreLimits
from modelshelf.modelstore.opening import open_shelf as open_stores
from modelshelf.schemas.artifacts import ModelArtifacts
from modelshelf.schemas.errors import ErrorCode
from modelshelf.service import console
from modelshelf.service.auth import DOCS_ASSETS, PUBLIC_PATHS, RegistryHolder, TokenAuthMiddleware
from modelshelf.service.body_timeout import BodyIdleTimeoutMiddleware
from modelshelf.service.docs import DocsPolicyMiddleware
from modelshelf.service.draining import DrainRefusedUploadsMiddleware
from modelshelf.service.errors import (
    HttpError,
    InternalErrorMiddleware,
    error_responses,
    install_error_handlers,
)
from modelshelf.service.guards import HostGuardMiddleware, OriginGuardMiddleware
from modelshelf.service.logs import JsonAccessLog
from modelshelf.service.metrics import RequestMetrics, prepare_metrics
from modelshelf.service.observing import ExchangeObserver, ObservingMiddleware
from modelshelf.service.route_templates import RouteTemplates
from modelshelf.service.routes import admin, aliases, maintenance, metrics, models, tokens
from modelshelf.service.routing import FALLBACK_ROUTE_NAME, allowed_methods
from modelshelf.service.settings import Settings, is_loopback

logger = logging.getLogger("modelshelf")
CORS_MAX_AGE_SECONDS = 86400
# The multipart body of a save, as tf.io.http sends it (further parts: one per manifest path).
SAVE_MODEL_FILES: dict[str, Any] = {
    "type": "object",
    "required": ["model.json"],
    "properties": {
        "model.json": {"type": "string", "format": "binary", "description": "model.json, first"},
        "model.weights.bin": {
            "type": "string",
            "format": "binary",
            "description": "all weight bytes, in weight-spec order",
        },
    },
}
EXPOSED_HEADERS = [
    "ETag",
    "Link",
    "Location",
    "Content-Length",
    "Content-Range",
    "Accept-Ranges",
    "X-Model-Version",
    "X-Model-View",
    "WWW-Authenticate",
    "Retry-After",
    "X-Request-Id",
]


def open_shelf(settings: Settings) -> Shelf:
    """Open every configured store (the model layer knows how); settings pass as values."""
    limits = StoreLimits(
        timeout_seconds=settings.store_timeout_seconds,
        threads=settings.store_threads,
        upload_buffer_bytes=settings.upload_buffer_bytes,
        max_model_json_bytes=settings.max_model_json_bytes,
        quotas=settings.quotas,
        retention=settings.retention,
    )
    setting = "MODELSHELF_STORES" if settings.stores else "MODELSHELF_DATA_DIR/MODELSHELF_S3_URL"
    return open_stores(settings.store_urls(), limits, setting)


def open_tokens(settings: Settings) -> TokenRegistry | None:
    """The token registry when tokens are on; None means every request may do anything."""
    if settings.auth_mode() == "none":
        return None
    return open_token_registry(
        settings.auth_store_url(), settings.admin(), timeout_seconds=settings.store_timeout_seconds
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    """The modelshelf ASGI app; settings from the environment when not given."""
    settings = settings or Settings()
    auth = RegistryHolder()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.shelf = open_shelf(settings)
        app.state.tokens = auth.registry = open_tokens(settings)
        try:
            yield
        finally:
            await app.state.shelf.close()
            if auth.registry is not None:
                await auth.registry.close()

    # /docs and /redoc with Swagger UI's and ReDoc's assets from the package: no CDN.
    app = FastAPIOffline(
        title="modelshelf",
        version="0.1.0",
        summary="A model store that speaks TensorFlow.js's save/load protocol.",
        lifespan=lifespan,
        static_url=DOCS_ASSETS,
    )
    app.state.settings = settings
    app.mount(console.ASSETS_PATH, console.assets(), name="console_assets")  # before its pages
    app.include_router(console.router)
    app.include_router(models.router)
    app.include_router(aliases.router)
    app.include_router(admin.router)
    app.include_router(tokens.router)
    app.include_router(maintenance.router)
    if settings.metrics_access() != "off":
        app.include_router(metrics.router)
    app.add_api_route(
        "/v1/models/{store}/{rest:path}",
        _unmatched_model_path,
        methods=["GET", "POST", "PUT", "DELETE"],
        include_in_schema=False,
        name=FALLBACK_ROUTE_NAME,
    )
    app.openapi = partial(_openapi_with_request_schemas, app)  # type: ignore[method-assign]
    install_error_handlers(app)
    app.add_middleware(DocsPolicyMiddleware)
    app.add_middleware(
        TokenAuthMiddleware,
        tokens_on=settings.auth_mode() == "tokens",
        auth=auth,
        token_optional=console.is_console_path,
        attempts=FailedAttempts(),
        public_paths=_public_paths(settings),
    )
    app.add_middleware(InternalErrorMiddleware)
    _warn_if_open(settings)
    # Inside CORS, so an allowed page reads these refusals; outside the routes, so nothing runs.
    app.add_middleware(OriginGuardMiddleware, allowed_origins=settings.cors_origins)
    hosts = settings.hosts_answered()
    if "*" in hosts:
        logger.warning(
            "modelshelf answers any Host header (it binds %s): set MODELSHELF_ALLOWED_HOSTS to "
            "the names clients use, against DNS rebinding",
            settings.host,
        )
    app.add_middleware(HostGuardMiddleware, allowed_hosts=hosts)
    app.add_middleware(DrainRefusedUploadsMiddleware)  # sees every refusal above
    # Its 408 is raised from receive inside the route and answered by the error handlers,
    # inside CORS like every error; the drain above reads through its deadline.
    app.add_middleware(
        BodyIdleTimeoutMiddleware, idle_timeout_seconds=settings.body_idle_timeout_seconds
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials=settings.cors_allow_credentials,
        allow_private_network=True,  # Chromium's preflight from a public page to this one
        allow_methods=["GET", "POST", "PUT", "DELETE", "OPTIONS"],
        allow_headers=["*"],
        expose_headers=EXPOSED_HEADERS,
        max_age=CORS_MAX_AGE_SECONDS,
    )
    _observe_every_exchange(app, settings)
    return app


def _observe_every_exchange(app: FastAPI, settings: Settings) -> None:
    """Metrics (and JSON access lines) for every answer, refusals included: outermost."""
    stores = settings.store_urls()
    prepare_metrics(stores)
    observers: list[ExchangeObserver] = [RequestMetrics()]
    if settings.log_format == "json":
        observers.append(JsonAccessLog())
    app.add_middleware(
        ObservingMiddleware,
        routes=RouteTemplates(app.router.routes),
        stores=stores,
        observers=observers,
    )


def _public_paths(settings: Settings) -> frozenset[str]:
    """Paths answered without a token; /metrics too unless MODELSHELF_METRICS=token."""
    if settings.metrics_access() == "public":
        return PUBLIC_PATHS | {metrics.METRICS_PATH}
    return PUBLIC_PATHS


def _warn_if_open(settings: Settings) -> None:
    if settings.auth_mode() == "none" and not is_loopback(settings.host):
        logger.warning(
            "modelshelf binds %s with MODELSHELF_AUTH=none: whoever reaches the port may "
            "overwrite or delete every model; set MODELSHELF_AUTH=tokens to require tokens",
            settings.host,
        )


def _openapi_with_request_schemas(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document, plus ModelArtifacts: the save route reads its body itself."""
    if app.openapi_schema is None:
        document = FastAPI.openapi(app)
        artifacts = ModelArtifacts.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for name, schema in artifacts.pop("$defs", {}).items():
            schemas.setdefault(name, schema)
        schemas["ModelArtifacts"] = artifacts
        schemas["SaveModelFiles"] = SAVE_MODEL_FILES
        _publish_name_pattern(document)
        _document_token_refusals(document)
        _document_unparsable_bodies(document)
    return app.openapi_schema or document


def _document_unparsable_bodies(document: dict[str, Any]) -> None:
    """Every operation that reads a body answers 400 invalid_request when it cannot be parsed."""
    body = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            if "requestBody" in operation:
                operation["responses"].setdefault(
                    "400", {"description": ErrorCode.INVALID_REQUEST.value, "content": body}
                )


def _document_token_refusals(document: dict[str, Any]) -> None:
    """Every operation that takes a token may answer 401, 403 and 429 (service.auth)."""
    refusals = error_responses(
        ErrorCode.UNAUTHORIZED, ErrorCode.FORBIDDEN, ErrorCode.TOO_MANY_REQUESTS
    )
    body = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            if not operation.get("security"):
                continue
            for status, entry in refusals.items():
                if status != ErrorCode.VALIDATION_ERROR.status:
                    operation["responses"].setdefault(
                        str(status), {"description": entry["description"], "content": body}
                    )


def _publish_name_pattern(document: dict[str, Any]) -> None:
    """Model names in paths carry the grammar the route convertor matches with."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] == "name":
                    parameter["schema"]["pattern"] = f"^{MODEL_NAME_PATTERN}$"
                if parameter["in"] == "path" and parameter["name"] == "alias":
                    parameter["schema"]["pattern"] = f"^{ALIAS_PATTERN}$"


async def _unmatched_model_path(request: Request, store: str, rest: str) -> Response:
    """Explains why a path under /v1/models matched no route (a reserved name, usually)."""
    allowed = allowed_methods(request.app.routes, request.scope)
    if allowed:
        raise HttpError(
            ErrorCode.METHOD_NOT_ALLOWED,
            f"{request.method} is not allowed here; use one of: {', '.join(allowed)}",
            {"Allow": ", ".join(allowed)},
        )
    # No route took the path, so read all of it as a name: the model layer says what breaks.
    validate_model_name(rest)
    raise HttpError(ErrorCode.ROUTE_NOT_FOUND, f"no route for {request.method} {request.url.path}")
