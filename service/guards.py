"""What a hostile page could do through a victim's browser, refused before any route runs.

- Cross-site writes: a multipart or ``text/plain`` POST is a CORS "simple" request, so the
  browser sends it without a preflight. A state-changing request whose ``Origin`` is not an
  allowed origin is answered 403 ``forbidden_origin``, its body drained, nothing stored.
- DNS rebinding: a page on ``evil.example`` re-pointed at 127.0.0.1 reaches the server with
  ``Host: evil.example``. Hosts outside ``allowed_hosts`` are answered 400 ``invalid_host``
  (they are echoed into ``loadUrl`` and ``Location`` otherwise).
"""

from __future__ import annotations

from collections.abc import Collection

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from modelshelf.schemas.errors import ErrorCode
from modelshelf.service.errors import error_response

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class OriginGuardMiddleware:
    """403 for a state-changing request from an origin the CORS settings do not allow."""

    def __init__(self, app: ASGIApp, allowed_origins: Collection[str]) -> None:
        self.app = app
        self.allow_all = "*" in allowed_origins
        self.allowed = {origin.rstrip("/").lower() for origin in allowed_origins}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.allow_all or scope["method"] not in STATE_CHANGING:
            await self.app(scope, receive, send)
            return
        origin = Headers(scope=scope).get("origin")
        if origin is None or origin.lower() in self.allowed:  # not a browser, or allowed
            await self.app(scope, receive, send)
            return
        message = (
            f"requests that change models are not accepted from the origin {origin!r}; add it "
            f"to MODELSHELF_CORS_ORIGINS if that page may save or remove models"
        )
        await error_response(ErrorCode.FORBIDDEN_ORIGIN, message)(scope, receive, send)


class HostGuardMiddleware:
    """400 for a ``Host`` header outside ``allowed_hosts`` (``*.example.com`` wildcards)."""

    def __init__(self, app: ASGIApp, allowed_hosts: Collection[str]) -> None:
        self.app = app
        self.allow_all = "*" in allowed_hosts
        self.allowed = [host.lower() for host in allowed_hosts]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.allow_all:
            await self.app(scope, receive, send)
            return
        host = host_name(Headers(scope=scope).get("host", ""))
        if any(_host_matches(host, pattern) for pattern in self.allowed):
            await self.app(scope, receive, send)
            return
        message = (
            f"this server does not answer for the host {host!r}; use one of "
            f"{', '.join(self.allowed)}, or add it to MODELSHELF_ALLOWED_HOSTS"
        )
        await error_response(ErrorCode.INVALID_HOST, message)(scope, receive, send)


def host_name(header: str) -> str:
    """The Host header without its port (``[::1]:80`` -> ``::1``)."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def _host_matches(host: str, pattern: str) -> bool:
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return host == pattern.strip("[]")
