"""The uvicorn configuration built from Settings: one for ``modelshelf serve`` and the tests.

With ``workers`` above 1, uvicorn's supervisor starts that many worker processes on one
socket and replaces any that dies. A worker is a fresh interpreter, so it gets the settings
the parent resolved (environment, TOML file, command line) through one environment variable,
and opens its stores itself.
"""

from __future__ import annotations

import json
import logging.config
import os
from typing import Any

import uvicorn
from fastapi import FastAPI

from modelshelf.service.app import create_app
from modelshelf.service.header_timeout import header_timeout_protocol, protocol_class
from modelshelf.service.logs import log_config
from modelshelf.service.settings import Settings

WORKER_SETTINGS = "MODELSHELF_WORKER_SETTINGS"  # JSON of the parent's resolved settings


def server_config(
    settings: Settings,
    *,
    host: str | None = None,
    port: int | None = None,
    log_level: str = "info",
) -> uvicorn.Config:
    """The app on uvicorn, with the settings' parser and head and keep-alive timeouts."""
    if host is not None:  # the app's defaults (allowed hosts, auth) follow the address bound
        settings = settings.bound_to(host)
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port if port is None else port,
        "timeout_keep_alive": settings.keep_alive_timeout_seconds,
        "proxy_headers": True,
        "log_level": log_level,
        "log_config": log_config(settings.log_format, log_level),
        # In json mode the app writes the access lines itself (service.logs.JsonAccessLog).
        "access_log": settings.log_format == "text",
        "lifespan": "on",
        "loop": "auto",  # uvloop where it is installed (the server extra), else asyncio
    }
    if settings.workers == 1:
        # Before create_app, whose warnings would otherwise skip the JSON formatting.
        logging.config.dictConfig(options["log_config"])
        http = header_timeout_protocol(settings.header_timeout_seconds, settings.http_parser)
        return uvicorn.Config(create_app(settings), http=http, **options)
    # Workers are spawned: the app and its protocol travel as import strings.
    os.environ[WORKER_SETTINGS] = _settings_json(settings)
    protocol = protocol_class(settings.http_parser)
    return uvicorn.Config(
        f"{__name__}:worker_app",
        factory=True,
        workers=settings.workers,
        http=f"{protocol.__module__}:{protocol.__name__}",
        **options,
    )


def worker_app() -> FastAPI:
    """The app of one worker process, from the settings its parent resolved."""
    settings = Settings.model_validate(json.loads(os.environ[WORKER_SETTINGS]))
    protocol_class(settings.http_parser).header_timeout_seconds = settings.header_timeout_seconds
    return create_app(settings)


def _settings_json(settings: Settings) -> str:
    fields = settings.model_dump(mode="json")
    if settings.admin_token is not None:  # dumped as '**********' otherwise
        fields["admin_token"] = settings.admin_token.get_secret_value()
    return json.dumps(fields)
