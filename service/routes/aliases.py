"""Aliases (stable names for versions, like ``prod``) and pruning old versions around them."""

from __future__ import annotations

from fastapi import APIRouter, Request

from modelshelf.access import Action
from modelshelf.schemas.errors import ErrorCode
from modelshelf.schemas.versions import AliasRequest, ModelInfo, PruneRequest, PruneResult
from modelshelf.service.auth import GrantDep
from modelshelf.service.dependencies import StoreDep
from modelshelf.service.errors import error_responses
from modelshelf.service.preconditions import precondition_parameters, preconditions
from modelshelf.service.routes.models import MODEL_PATH, model_info
from modelshelf.service.routing import ModelNameConvertor  # noqa: F401  (registers 'modelname')

router = APIRouter(prefix="/v1/models", tags=["aliases"])
ALIAS_PATH = MODEL_PATH + "/~aliases/{alias}"
_MOVE_IF = 'Move only if the alias points at this version now: "VERSION_ID"'
_CONDITIONS = {
    "parameters": precondition_parameters(_MOVE_IF, "'*': create only; refused if it exists")
}
_ERRORS = error_responses(
    ErrorCode.MODEL_NOT_FOUND,
    ErrorCode.VERSION_NOT_FOUND,
    ErrorCode.ALIAS_NOT_FOUND,
    ErrorCode.INVALID_ALIAS,
    ErrorCode.PRECONDITION_FAILED,
    ErrorCode.UNKNOWN_STORE,
)


async def _info(store: StoreDep, name: str) -> ModelInfo:
    versions = await store.versions(name)
    return model_info(store, name, versions, await store.aliases.all(name))


@router.put(
    ALIAS_PATH,
    operation_id="setAlias",
    response_model=ModelInfo,
    responses=_ERRORS,
    openapi_extra=_CONDITIONS,
)
async def set_alias(
    request: Request,
    store: StoreDep,
    name: str,
    alias: str,
    target: AliasRequest,
    grant: GrantDep,
) -> ModelInfo:
    """Point an alias at a version (needs write); answers the model's info."""
    grant.require(Action.WRITE, store.name, name)
    conditions = preconditions(request)
    await store.set_alias(
        name,
        alias,
        target.versionId,
        if_match=conditions.if_match,
        if_none_match=conditions.if_none_match,
    )
    return await _info(store, name)


@router.delete(
    ALIAS_PATH,
    operation_id="removeAlias",
    response_model=ModelInfo,
    responses=_ERRORS,
    openapi_extra={"parameters": precondition_parameters(_MOVE_IF.replace("Move", "Remove"))},
)
async def remove_alias(
    request: Request, store: StoreDep, name: str, alias: str, grant: GrantDep
) -> ModelInfo:
    """Remove an alias (needs write); its version stays. Answers the model's info."""
    grant.require(Action.WRITE, store.name, name)
    conditions = preconditions(request)
    await store.aliases.remove(name, alias, if_match=conditions.if_match)
    return await _info(store, name)


@router.post(
    MODEL_PATH + "/~prune",
    operation_id="pruneModel",
    response_model=PruneResult,
    tags=["models"],
    responses=error_responses(ErrorCode.MODEL_NOT_FOUND, ErrorCode.UNKNOWN_STORE),
)
async def prune_model(
    store: StoreDep, name: str, prune: PruneRequest, grant: GrantDep
) -> PruneResult:
    """Remove all but the newest ``keep`` versions (needs delete); aliased ones stay."""
    grant.require(Action.DELETE, store.name, name)
    pruned = await store.prune(name, prune.keep, dry_run=prune.dryRun)
    return PruneResult(removed=pruned.removed, kept=pruned.kept, dryRun=prune.dryRun)
