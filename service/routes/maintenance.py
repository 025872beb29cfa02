"""Maintenance for operators: garbage collection (``POST /v1/admin/gc``)."""

from __future__ import annotations

from fastapi import APIRouter

from modelshelf.access import Action
from modelshelf.access.scopes import ANY_STORE
from modelshelf.modelstore.sweeping import collect_shelf_garbage
from modelshelf.schemas.errors import ErrorCode
from modelshelf.schemas.maintenance import GcReport, GcRequest
from modelshelf.service.auth import GrantDep
from modelshelf.service.dependencies import ShelfDep
from modelshelf.service.errors import error_responses

router = APIRouter(tags=["admin"])


@router.post(
    "/v1/admin/gc",
    operation_id="collectGarbage",
    response_model=GcReport,
    responses=error_responses(ErrorCode.UNKNOWN_STORE),
)
async def collect_garbage(gc: GcRequest, shelf: ShelfDep, grant: GrantDep) -> GcReport:
    """Remove what killed saves left behind (needs admin:*); answers what went, bytes freed.

    Weight files of versions that never committed, SQLite staging blobs, incomplete S3
    multipart uploads and temp files, all begun more than ``olderThan`` seconds ago: a save
    in progress keeps its bytes. Committed versions are never touched.
    """
    grant.require(Action.ADMIN, ANY_STORE)
    return await collect_shelf_garbage(shelf, gc.olderThan, dry_run=gc.dryRun, store=gc.store)
