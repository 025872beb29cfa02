"""Wire models of tokens and share links (``/v1/tokens``, ``~share``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

TEN_YEARS_SECONDS = 10 * 366 * 86400


class TokenRequest(BaseModel):
    """What ``POST /v1/tokens`` reads."""

    name: str = Field(min_length=1, max_length=200, examples=["ci"])
    scopes: list[str] = Field(
        min_length=1,
        description="ACTION:STORE[/NAME]; ACTION is read, write, delete or admin, STORE a "
        "store or *, NAME a model name or a prefix ending in *",
        examples=[["write:indexeddb/team/*", "read:*"]],
    )
    expiresIn: int | None = Field(
        default=None, gt=0, le=TEN_YEARS_SECONDS, description="Seconds; never expires if absent"
    )


class TokenInfo(BaseModel):
    """A token as listed: never its secret."""

    id: str
    name: str
    scopes: list[str]
    createdAt: datetime
    expiresAt: datetime | None = None
    sharedModel: str | None = Field(
        default=None, description="A share link's model (STORE://NAME); it reads only that"
    )
    sharedVersion: str | None = Field(default=None, description="A share link's one version")


class CreatedToken(TokenInfo):
    """The answer of ``POST /v1/tokens``: the only time the secret is shown."""

    token: str


class TokenList(BaseModel):
    tokens: list[TokenInfo]


class ShareRequest(BaseModel):
    """What ``POST /v1/models/{store}/{name}/~share`` reads."""

    expiresIn: int = Field(default=3600, gt=0, le=TEN_YEARS_SECONDS, description="Seconds")
    version: str | None = Field(default=None, description="Share only this version")


class ShareLink(BaseModel):
    """A model.json URL that loads with no other credentials, until ``expiresAt``."""

    url: str
    token: str
    expiresAt: datetime | None
