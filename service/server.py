"""The uvicorn configuration built from Settings: one for ``modelshelf serve`` and the tests."""

from __future__ import annotations

import uvicorn

from modelshelf.service.app import create_app
from modelshelf.service.header_timeout import header_timeout_protocol
from modelshelf.service.logs import log_config
from modelshelf.service.settings import Settings


def server_config(
    settings: Settings,
    *,
    host: str | None = None,
    port: int | None = None,
    log_level: str = "info",
) -> uvicorn.Config:
    """The app on uvicorn's h11 server, with the settings' head and keep-alive timeouts."""
    if host is not None:  # the app's defaults (allowed hosts, auth) follow the address bound
        settings = settings.bound_to(host)
    return uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port if port is None else port,
        http=header_timeout_protocol(settings.header_timeout_seconds),
        timeout_keep_alive=settings.keep_alive_timeout_seconds,
        proxy_headers=True,
        log_level=log_level,
        log_config=log_config(),
        lifespan="on",
    )
