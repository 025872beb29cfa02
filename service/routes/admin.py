"""Copy and move between stores, the store list, and health checks."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from starlette.responses import JSONResponse

from modelshelf.access import Action, Grant
from modelshelf.modelstore import Shelf
from modelshelf.schemas.errors import ErrorCode
from modelshelf.schemas.versions import ModelInfo, StoreInfo, StoreList, TransferRequest
from modelshelf.service.auth import GrantDep
from modelshelf.service.dependencies import ShelfDep
from modelshelf.service.errors import error_responses
from modelshelf.service.routes.models import model_info

router = APIRouter()
_TRANSFER_ERRORS = error_responses(
    ErrorCode.SAME_SOURCE_AND_DESTINATION,
    ErrorCode.INVALID_MODEL_URL,
    ErrorCode.MODEL_NOT_FOUND,
    ErrorCode.UNKNOWN_STORE,
    ErrorCode.QUOTA_EXCEEDED,
    ErrorCode.INTEGRITY_ERROR,
)


@router.post(
    "/v1/copy",
    operation_id="copyModel",
    response_model=ModelInfo,
    tags=["models"],
    responses=_TRANSFER_ERRORS,
)
async def copy_model(transfer: TransferRequest, shelf: ShelfDep, grant: GrantDep) -> ModelInfo:
    """Copy a model's current version to another URL; answers the destination's info.

    Needs read on the source and write on the destination.
    """
    _require_transfer(shelf, grant, transfer)
    await shelf.copy(transfer.source, transfer.destination)
    return await _destination_info(shelf, transfer.destination)


@router.post(
    "/v1/move",
    operation_id="moveModel",
    response_model=ModelInfo,
    tags=["models"],
    responses=_TRANSFER_ERRORS,
)
async def move_model(transfer: TransferRequest, shelf: ShelfDep, grant: GrantDep) -> ModelInfo:
    """Move a model (every version); the source goes only after the destination is verified.

    Needs what a copy needs, and delete on the source.
    """
    _require_transfer(shelf, grant, transfer, Action.DELETE)
    await shelf.move(transfer.source, transfer.destination)
    return await _destination_info(shelf, transfer.destination)


def _require_transfer(
    shelf: Shelf, grant: Grant, transfer: TransferRequest, *source_also: Action
) -> None:
    source, destination = shelf.resolve(transfer.source), shelf.resolve(transfer.destination)
    for action in (Action.READ, *source_also):
        grant.require(action, source.store.name, source.name)
    grant.require(Action.WRITE, destination.store.name, destination.name)


async def _destination_info(shelf: Shelf, url: str) -> ModelInfo:
    destination = shelf.resolve(url)
    versions = await destination.store.versions(destination.name)
    aliases = await destination.store.aliases.all(destination.name)
    return model_info(destination.store, destination.name, versions, aliases)


@router.get("/v1/stores", operation_id="listStores", response_model=StoreList, tags=["stores"])
async def list_stores(shelf: ShelfDep, grant: GrantDep) -> StoreList:
    """The configured stores and the kind of backend behind each (no secrets).

    With tokens, only the stores some scope of the token concerns.
    """
    return StoreList(
        stores=[
            StoreInfo(name=name, kind=store.kind, quotaBytes=store.quota_bytes)
            for name, store in shelf.stores.items()
            if grant.reaches(name)
        ]
    )


@router.get("/healthz", operation_id="healthz", tags=["health"])
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    operation_id="readyz",
    tags=["health"],
    responses={503: {"description": "a backend is unreachable"}},
)
async def readyz(shelf: ShelfDep) -> JSONResponse:
    """Every backend answers a listing."""
    checks = await asyncio.gather(*(store.readiness() for store in shelf.stores.values()))
    stores = dict(zip(shelf.stores, checks, strict=True))
    ready = all(state == "ok" for state in stores.values())
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", "stores": stores},
        status_code=200 if ready else 503,
    )
