"""``/metrics``: Prometheus's scrape target, outside the OpenAPI document (it is not the API)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from modelshelf.access import Action, Grant
from modelshelf.access.scopes import ANY_STORE
from modelshelf.service.metrics import EXPOSITION_TYPE, exposition

router = APIRouter()
METRICS_PATH = "/metrics"


@router.get(METRICS_PATH, include_in_schema=False)
def metrics(request: Request) -> Response:
    """Prometheus metrics, in its text format."""
    # With MODELSHELF_METRICS=token the token check left a grant; when public, it did not.
    grant: Grant | None = request.scope.get("state", {}).get("grant")
    if grant is not None:
        # Metrics name every store and its traffic: what a reader of every store may know.
        grant.require(Action.READ, ANY_STORE)
    # A plain def: with several workers, exposition() reads every worker's files.
    return Response(exposition(), media_type=EXPOSITION_TYPE)
