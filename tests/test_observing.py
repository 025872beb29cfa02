"""The middleware behind /metrics and the JSON access log, driven in process with plain ASGI
messages: route templates, bytes each way, X-Request-Id, uploads in flight, storage errors."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import REGISTRY
from starlette.types import Message, Receive, Scope, Send

from modelshelf.schemas.errors import CodedError, ErrorCode
from modelshelf.service.app import create_app
from modelshelf.service.errors import response_for
from modelshelf.service.metrics import RequestMetrics
from modelshelf.service.observing import Exchange, ObservingMiddleware
from modelshelf.service.route_templates import RouteTemplates
from modelshelf.service.settings import Settings

WEIGHTS = "/v1/models/{store}/{name}/~v/{version}/{path}"
ROUTES = RouteTemplates(create_app(Settings(stores={"file": "memory://"})).router.routes)


class Recorder:
    def __init__(self) -> None:
        self.exchanges: list[Exchange] = []

    def started(self, exchange: Exchange) -> None:
        pass

    def finished(self, exchange: Exchange) -> None:
        self.exchanges.append(exchange)


def scope(method: str, path: str, headers: list[tuple[bytes, bytes]] | None = None) -> Scope:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": b"token=secret",
        "headers": headers or [],
        "client": ("10.0.0.7", 5555),
    }


def echo_app(status: int = 200, reply: bytes = b"answer") -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": reply, "more_body": True})
        await send({"type": "http.response.body", "body": reply})

    return app


async def exchange_through(
    app: Any, request: Scope, body: list[bytes], *observers: Any
) -> tuple[Exchange, list[Message]]:
    recorder = Recorder()
    middleware = ObservingMiddleware(app, ROUTES, ["file"], [recorder, *observers])
    chunks = [
        {"type": "http.request", "body": chunk, "more_body": i < len(body) - 1}
        for i, chunk in enumerate(body)
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return chunks.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    await middleware(request, receive, send)
    (exchange,) = recorder.exchanges
    return exchange, sent


async def test_an_exchange_has_its_route_template_status_and_bytes_each_way() -> None:
    request = scope("POST", "/v1/models/file/team/a")
    exchange, _sent = await exchange_through(echo_app(201), request, [b"abc", b"defg"])
    assert exchange.route.template == "/v1/models/{store}/{name}"
    assert exchange.route.operation == "saveModel"
    assert (exchange.status, exchange.bytes_received, exchange.bytes_sent) == (201, 7, 12)
    assert exchange.store == "file"
    assert exchange.client == "10.0.0.7"
    assert exchange.duration_seconds > 0


@pytest.mark.parametrize(
    ("path", "template", "store"),
    [
        ("/v1/models/file/a/~v/1/w.bin", WEIGHTS, "file"),
        ("/v1/models/elsewhere/a/model.json", "/v1/models/{store}/{name}/model.json", ""),
        ("/v1/models/file/a/~nothing", "/v1/models/{store}/{rest}", "file"),
        ("/docs-assets/swagger-ui.css", "/docs-assets/{path}", ""),
        ("/wp-admin/setup.php", "unmatched", ""),
    ],
)
async def test_labels_are_templates_and_configured_stores(
    path: str, template: str, store: str
) -> None:
    exchange, _sent = await exchange_through(echo_app(404), scope("GET", path), [b""])
    assert (exchange.route.template, exchange.store) == (template, store)


async def test_a_sane_request_id_is_echoed_and_any_other_replaced() -> None:
    given = [(b"x-request-id", b"trace-42:abc")]
    exchange, sent = await exchange_through(echo_app(), scope("GET", "/healthz", given), [b""])
    assert exchange.request_id == "trace-42:abc"
    assert sent[0]["headers"] == [(b"x-request-id", b"trace-42:abc")]
    hostile = [(b"x-request-id", b"a b\r\nforged: 1")]
    exchange, sent = await exchange_through(echo_app(), scope("GET", "/healthz", hostile), [b""])
    assert len(exchange.request_id) == 32 and exchange.request_id.isalnum()
    assert sent[0]["headers"] == [(b"x-request-id", exchange.request_id.encode())]


async def test_an_escaping_error_is_recorded_as_500_and_raised() -> None:
    async def failing(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("boom")

    recorder = Recorder()
    middleware = ObservingMiddleware(failing, ROUTES, ["file"], [recorder])
    with pytest.raises(RuntimeError):
        await middleware(scope("GET", "/v1/stores"), _never, _never)
    assert recorder.exchanges[0].status == 500


async def test_a_save_is_an_upload_in_flight_until_it_is_answered() -> None:
    seen: list[float] = []

    async def save(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(_in_flight())
        await echo_app(201)(scope, receive, send)

    before = _in_flight()
    request = scope("PUT", "/v1/models/file/a")
    await exchange_through(save, request, [b"body"], RequestMetrics())
    assert seen == [before + 1]
    assert _in_flight() == before


def test_storage_failures_are_counted_where_errors_become_answers() -> None:
    class Unreachable(CodedError):
        code = ErrorCode.UNAVAILABLE

    class Invalid(CodedError):
        code = ErrorCode.INVALID_MODEL

    before = _backend_errors("unavailable")
    assert response_for(Unreachable("store 'file' did not answer")).status_code == 503
    assert response_for(Invalid("not a model")).status_code == 400
    assert _backend_errors("unavailable") == (before or 0) + 1
    assert _backend_errors("invalid_model") is None  # no series: not a storage failure


def _in_flight() -> float | None:
    return REGISTRY.get_sample_value("modelshelf_uploads_in_flight")


def _backend_errors(code: str) -> float | None:
    labels = {"kind": ErrorCode(code).kind.value, "code": code}
    return REGISTRY.get_sample_value("modelshelf_backend_errors_total", labels)


async def _never(*_args: Any) -> Any:
    raise AssertionError("not called")
