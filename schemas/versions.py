"""Versions, model info and listings."""

from __future__ import annotations

from pydantic import BaseModel, Field, RootModel

from modelshelf.schemas.artifacts import ModelArtifactsInfo


class StoredFile(BaseModel):
    """One stored file of a version, with what was measured while it streamed in."""

    path: str = Field(description="Path relative to model.json, without a leading './'")
    size: int
    sha256: str


class VersionInfo(BaseModel):
    """One immutable version of a model."""

    id: str
    dateSaved: str
    modelArtifactsInfo: ModelArtifactsInfo
    modelJson: StoredFile
    files: list[StoredFile] = Field(description="Weight files in manifest order")


class ModelInfo(BaseModel):
    """A model: its current version and every version, oldest first."""

    url: str
    store: str
    name: str
    currentVersion: str
    modelArtifactsInfo: ModelArtifactsInfo
    versions: list[VersionInfo]
    aliases: dict[str, str] = Field(
        default_factory=dict, description="Alias -> the version id it points to"
    )


class ModelList(RootModel[dict[str, ModelArtifactsInfo]]):
    """Shaped like ``tf.io.listModels()``: ``{"indexeddb://a": ModelArtifactsInfo}``."""


class StoreInfo(BaseModel):
    """A configured store and the kind of backend behind it (no secrets)."""

    name: str
    kind: str
    quotaBytes: int | None = None


class StoreList(BaseModel):
    stores: list[StoreInfo]


MODEL_URL_PATTERN = r"^[^/:]+://[^/].*$"


class AliasRequest(BaseModel):
    """Body of ``PUT .../~aliases/{alias}``."""

    versionId: str = Field(description="A version id, or another alias", examples=["prod"])


class PruneRequest(BaseModel):
    """Body of ``POST .../~prune``."""

    keep: int = Field(ge=1, description="The newest this many versions stay")
    dryRun: bool = Field(default=False, description="Only say what would be removed")


class PruneResult(BaseModel):
    """Version ids removed (or, dry, that would be) and kept, oldest first; aliased versions
    are always kept."""

    removed: list[str]
    kept: list[str]
    dryRun: bool


class TransferRequest(BaseModel):
    """Body of copy and move: model URLs as TF.js writes them."""

    source: str = Field(pattern=MODEL_URL_PATTERN, examples=["indexeddb://my-model"])
    destination: str = Field(pattern=MODEL_URL_PATTERN, examples=["s3://team/my-model"])
