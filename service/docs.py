"""``/docs`` and ``/redoc`` are pages of this server only: a Content-Security-Policy says so.

fastapi-offline serves Swagger UI's and ReDoc's assets from the package, but ReDoc's bundle
still names one outside URL: the Redocly logo in its menu footer, an image that hides itself
when it fails. The policy lets the pages load only from this server, so the browser never
sends that request (an air-gapped browser would wait on it, a watched network would see it).
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DOCS_PAGES = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
# Both pages start their UI from an inline script; both inject inline styles; ReDoc's
# search runs in a worker made from a blob; Swagger UI's icons are data: URLs.
SAME_ORIGIN_ONLY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; worker-src 'self' blob:; "
    "connect-src 'self'"
)


class DocsPolicyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in DOCS_PAGES:
            await self.app(scope, receive, send)
            return

        async def policed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["Content-Security-Policy"] = SAME_ORIGIN_ONLY
            await send(message)

        await self.app(scope, receive, policed_send)
