"""Tokens (admin only) and share links: ``/v1/tokens`` and ``.../~share``."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from starlette.responses import JSONResponse

from modelshelf.access import Action, TokenRecord, TokenRegistry
from modelshelf.access.errors import TokensDisabledError
from modelshelf.access.scopes import ANY_STORE
from modelshelf.schemas.errors import ErrorCode
from modelshelf.schemas.tokens import (
    CreatedToken,
    ShareLink,
    ShareRequest,
    TokenInfo,
    TokenList,
    TokenRequest,
)
from modelshelf.service.auth import GrantDep
from modelshelf.service.dependencies import ShelfDep, StoreDep, model_base_url
from modelshelf.service.errors import error_responses
from modelshelf.service.routing import ModelNameConvertor  # noqa: F401  (registers 'modelname')

router = APIRouter(tags=["tokens"])
_REFUSALS = (ErrorCode.TOKENS_DISABLED,)  # 401 and 403: every operation taking a token


async def get_registry(request: Request) -> TokenRegistry:
    registry: TokenRegistry | None = request.app.state.tokens
    if registry is None:
        raise TokensDisabledError(
            "tokens are off (MODELSHELF_AUTH=none): whoever reaches the server may do "
            "anything; start it with MODELSHELF_AUTH=tokens to issue tokens and share links"
        )
    return registry


RegistryDep = Annotated[TokenRegistry, Depends(get_registry)]


@router.post(
    "/v1/tokens",
    operation_id="createToken",
    status_code=201,
    response_model=CreatedToken,
    responses=error_responses(*_REFUSALS, ErrorCode.INVALID_SCOPE),
)
async def create_token(
    request: TokenRequest, registry: RegistryDep, grant: GrantDep, shelf: ShelfDep
) -> JSONResponse:
    """Issue a token (needs admin:*); the answer is the only time its secret is shown."""
    grant.require(Action.ADMIN, ANY_STORE)
    record, token = await registry.create(
        request.name, request.scopes, request.expiresIn, grant, shelf.stores
    )
    created = CreatedToken(**token_info(record).model_dump(), token=token)
    return JSONResponse(created.model_dump(mode="json"), status_code=201)


@router.get(
    "/v1/tokens",
    operation_id="listTokens",
    response_model=TokenList,
    responses=error_responses(*_REFUSALS),
)
async def list_tokens(registry: RegistryDep, grant: GrantDep) -> TokenList:
    """Every token and share link, oldest first (needs admin:*); never their secrets."""
    grant.require(Action.ADMIN, ANY_STORE)
    return TokenList(tokens=[token_info(record) for record in await registry.tokens()])


@router.delete(
    "/v1/tokens/{token_id}",
    operation_id="revokeToken",
    response_model=TokenInfo,
    responses=error_responses(*_REFUSALS, ErrorCode.TOKEN_NOT_FOUND),
)
async def revoke_token(token_id: str, registry: RegistryDep, grant: GrantDep) -> TokenInfo:
    """Revoke a token (needs admin:*); every replica refuses it within seconds."""
    grant.require(Action.ADMIN, ANY_STORE)
    return token_info(await registry.revoke(token_id))


@router.post(
    "/v1/models/{store}/{name:modelname}/~share",
    operation_id="shareModel",
    status_code=201,
    response_model=ShareLink,
    responses=error_responses(
        *_REFUSALS,
        ErrorCode.INVALID_REQUEST,
        ErrorCode.MODEL_NOT_FOUND,
        ErrorCode.VERSION_NOT_FOUND,
        ErrorCode.UNKNOWN_STORE,
    ),
)
async def share_model(
    request: Request,
    store: StoreDep,
    name: str,
    share: ShareRequest,
    registry: RegistryDep,
    grant: GrantDep,
) -> JSONResponse:
    """A model.json URL with a token that reads this model (or one version) and no other."""
    grant.require(Action.READ, store.name, name, share.version)
    await store.version(name, share.version)  # 404 before a link to nothing is made
    record, token = await registry.share(store.name, name, share.version, share.expiresIn, grant)
    query = {**({"version": share.version} if share.version else {}), "token": token}
    url = f"{model_base_url(request, store.name, name)}model.json?{urlencode(query)}"
    link = ShareLink(url=url, token=token, expiresAt=record.expires_at)
    return JSONResponse(link.model_dump(mode="json"), status_code=201)


def token_info(record: TokenRecord) -> TokenInfo:
    shared = record.share_of.replace("/", "://", 1) if record.share_of else None
    return TokenInfo(
        id=record.id,
        name=record.name,
        scopes=list(record.scopes),
        createdAt=record.created_at,
        expiresAt=record.expires_at,
        sharedModel=shared,
        sharedVersion=record.version,
    )
