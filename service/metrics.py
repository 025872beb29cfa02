"""The Prometheus metrics ``/metrics`` exposes, and what each exchange adds to them.

The metrics live at module level, as prometheus-client expects. With several workers each
process writes its values to files in ``PROMETHEUS_MULTIPROC_DIR`` (set before the workers
start, see service.multiprocess_metrics) and a scrape of any worker sums every process's.

Labels stay bounded: routes are templates, stores are configured stores (others are ""),
methods outside HTTP's usual few are "OTHER".
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

from modelshelf.schemas.errors import ErrorCode
from modelshelf.service.observing import Exchange

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
SAVE_OPERATIONS = frozenset({"saveModel", "saveModelPut"})
LOAD_OPERATION = "loadModelJson"
REMOVE_OPERATION = "removeModel"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})
# Answers that mean a store failed, not that the request was wrong (service.errors counts them).
STORAGE_FAILURES = frozenset(
    {
        ErrorCode.STORAGE_ERROR,
        ErrorCode.UNAVAILABLE,  # unreachable, or past MODELSHELF_STORE_TIMEOUT_SECONDS
        ErrorCode.STORE_READ_ONLY,
        ErrorCode.PERMISSION_DENIED,
        ErrorCode.INSUFFICIENT_STORAGE,
        ErrorCode.INTEGRITY_ERROR,
        ErrorCode.VERSION_FILES_MISSING,
    }
)
# Up to a few minutes: a large save over a slow link is one request.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

REQUESTS = Counter(
    "modelshelf_requests",
    "HTTP requests answered, by method, route template and status",
    ["method", "route", "status"],
)
REQUEST_DURATION = Histogram(
    "modelshelf_request_duration_seconds",
    "From a request's arrival to its response's last byte, by method and route template",
    ["method", "route"],
    buckets=DURATION_BUCKETS,
)
RECEIVED_BYTES = Counter(
    "modelshelf_received_bytes", "Request body bytes read, by store", ["store"]
)
SENT_BYTES = Counter("modelshelf_sent_bytes", "Response body bytes sent, by store", ["store"])
SAVES = Counter(
    "modelshelf_saves", "Versions saved: saveModel and saveModelPut answered 201", ["store"]
)
LOADS = Counter(
    "modelshelf_loads", "Model loads: GETs of model.json answered 200 or 304", ["store"]
)
REMOVALS = Counter(
    "modelshelf_removals", "Models or versions removed: removeModel answered 200", ["store"]
)
BACKEND_ERRORS = Counter(
    "modelshelf_backend_errors",
    "Requests answered with a storage failure, by error kind and code",
    ["kind", "code"],
)
UPLOADS_IN_FLIGHT = Gauge(
    "modelshelf_uploads_in_flight",
    "Saves being received or stored",
    multiprocess_mode="livesum",  # the running workers' sum; an exited worker's is dropped
)


def prepare_metrics(stores: Iterable[str]) -> None:
    """Every store's and every failure's series, at 0, so rates start at the first scrape."""
    for store in stores:
        for metric in (RECEIVED_BYTES, SENT_BYTES, SAVES, LOADS, REMOVALS):
            metric.labels(store)
    RECEIVED_BYTES.labels("")  # requests outside any store (/v1/copy, /docs, ...)
    SENT_BYTES.labels("")
    for code in STORAGE_FAILURES:
        BACKEND_ERRORS.labels(code.kind.value, code.value)


def count_backend_error(code: ErrorCode) -> None:
    """Count an error answer if it says a store failed."""
    if code in STORAGE_FAILURES:
        BACKEND_ERRORS.labels(code.kind.value, code.value).inc()


class RequestMetrics:
    """The ``ExchangeObserver`` that counts each exchange."""

    def started(self, exchange: Exchange) -> None:
        if exchange.route.operation in SAVE_OPERATIONS:
            UPLOADS_IN_FLIGHT.inc()

    def finished(self, exchange: Exchange) -> None:
        method = exchange.method if exchange.method in KNOWN_METHODS else "OTHER"
        route = exchange.route.template
        REQUESTS.labels(method, route, str(exchange.status)).inc()
        REQUEST_DURATION.labels(method, route).observe(exchange.duration_seconds)
        RECEIVED_BYTES.labels(exchange.store).inc(exchange.bytes_received)
        SENT_BYTES.labels(exchange.store).inc(exchange.bytes_sent)
        if exchange.route.operation in SAVE_OPERATIONS:
            UPLOADS_IN_FLIGHT.dec()
        model_event = _model_event(exchange)
        if model_event is not None:
            model_event.labels(exchange.store).inc()


def _model_event(exchange: Exchange) -> Counter | None:
    operation, status = exchange.route.operation, exchange.status
    if operation in SAVE_OPERATIONS and status == 201:
        return SAVES
    # A 304 is a loader revalidating its cached copy: a load all the same. HEAD is not one.
    if operation == LOAD_OPERATION and exchange.method == "GET" and status in (200, 304):
        return LOADS
    if operation == REMOVE_OPERATION and status == 200:
        return REMOVALS
    return None


def exposition() -> bytes:
    """The metrics in Prometheus text format: every worker's, summed, with several workers."""
    if MULTIPROC_DIR not in os.environ:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


EXPOSITION_TYPE = CONTENT_TYPE_LATEST
