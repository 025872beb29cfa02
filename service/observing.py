"""Every HTTP exchange, watched from outside the rest of the app, for /metrics and the access log.

``ObservingMiddleware`` is the outermost middleware, so it sees every answer: the routes',
and the refusals of the guards, the token check and CORS. It learns the route from its
template (service.route_templates), counts body bytes as ``receive`` and ``send`` pass them
(it never reads a body), stamps ``X-Request-Id`` on the response, and hands the finished
``Exchange`` to its observers.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelshelf.service.route_templates import RouteMatch, RouteTemplates

REQUEST_ID_HEADER = b"x-request-id"
# A client's own id is reused when it is short and plain: it goes into logs verbatim.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")


@dataclass(slots=True)
class Exchange:
    """One request and its response, as far as they have got."""

    method: str
    path: str
    query: str
    client: str
    route: RouteMatch
    store: str  # a configured store, or "" (no store in the path, or an unknown one)
    request_id: str
    started_at: float
    status: int = 0  # 0 until the response starts
    bytes_received: int = 0
    bytes_sent: int = 0
    duration_seconds: float = 0.0


class ExchangeObserver(Protocol):
    def started(self, exchange: Exchange) -> None: ...

    def finished(self, exchange: Exchange) -> None: ...


class ObservingMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        routes: RouteTemplates,
        stores: Collection[str],
        observers: Sequence[ExchangeObserver],
    ) -> None:
        self.app = app
        self.routes = routes
        self.stores = frozenset(stores)
        self.observers = observers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        exchange = self._exchange(scope)
        for observer in self.observers:
            observer.started(exchange)

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                exchange.bytes_received += len(message.get("body", b""))
            return message

        async def stamping_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                exchange.status = message["status"]
                message = _with_request_id(message, exchange.request_id)
            elif message["type"] == "http.response.body":
                exchange.bytes_sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, counting_receive, stamping_send)
        except Exception:
            exchange.status = exchange.status or 500  # Starlette's last-resort handler answers
            raise
        finally:
            exchange.duration_seconds = time.perf_counter() - exchange.started_at
            for observer in self.observers:
                observer.finished(exchange)

    def _exchange(self, scope: Scope) -> Exchange:
        route = self.routes.match(scope["method"], scope["path"])
        store = route.param("store")
        client = scope.get("client")
        return Exchange(
            method=scope["method"],
            path=scope["path"],
            query=scope.get("query_string", b"").decode("latin-1"),
            client=client[0] if client else "",
            route=route,
            store=store if store in self.stores else "",
            request_id=request_id(scope),
            started_at=time.perf_counter(),
        )


def request_id(scope: Scope) -> str:
    """The client's ``X-Request-Id`` when it is sane, else a fresh random one."""
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            given = bytes(value).decode("latin-1")
            if _SANE_REQUEST_ID.fullmatch(given):
                return given
            break
    return uuid.uuid4().hex


def _with_request_id(start: Message, request_id: str) -> Message:
    headers = [
        (name, value) for name, value in start.get("headers", []) if name != REQUEST_ID_HEADER
    ]
    return {**start, "headers": [*headers, (REQUEST_ID_HEADER, request_id.encode())]}
