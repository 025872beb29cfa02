"""Wire models of maintenance: garbage collection (``POST /v1/admin/gc``)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from modelshelf.schemas.tokens import TEN_YEARS_SECONDS

DEFAULT_GC_AGE_SECONDS = 3600


class GcRequest(BaseModel):
    """What ``POST /v1/admin/gc`` reads."""

    dryRun: bool = Field(default=False, description="Report what would go; remove nothing")
    olderThan: int = Field(
        default=DEFAULT_GC_AGE_SECONDS,
        ge=0,
        le=TEN_YEARS_SECONDS,
        description="Seconds: only what a save or upload began longer ago than this goes, so "
        "saves in progress keep their bytes; make it longer than the longest save",
    )
    store: str | None = Field(default=None, description="Only this store; every store if absent")


class RemovedItem(BaseModel):
    """One thing gc removed (or, in a dry run, would remove)."""

    kind: str = Field(
        description="weight_file or catalog_file: a key of a version that never committed; "
        "view_file: a shard or marker of a view whose derivation was killed; "
        "staging_blob (sqlite), multipart_upload (s3) or temp_file (file): the bytes of an "
        "upload that never finished",
        examples=["weight_file"],
    )
    name: str = Field(description="The key, temp file, SQLite blob or S3 upload")
    size: int = Field(description="Bytes freed")


class StoreGcReport(BaseModel):
    """What gc removed from one store."""

    store: str
    removed: list[RemovedItem]
    freedBytes: int
    error: str | None = Field(
        default=None, description="Why gc stopped early in this store; what it removed is listed"
    )


class GcReport(BaseModel):
    """The answer of ``POST /v1/admin/gc``: what each store freed."""

    dryRun: bool
    olderThan: int
    stores: list[StoreGcReport]
    freedBytes: int
