"""All configured stores by name, model URLs, and copy/move between any two stores."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from modelshelf.modelstore import layout
from modelshelf.modelstore.errors import (
    IntegrityError,
    InvalidModelUrlError,
    ModelNotFoundError,
    SameSourceAndDestinationError,
    UnknownStoreError,
)
from modelshelf.modelstore.store import ModelStore, WeightUpload
from modelshelf.modelstore.views import Views
from modelshelf.schemas.versions import VersionInfo


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A model in a store, as a TF.js URL names it: ``indexeddb://my-model``."""

    store: ModelStore
    name: str

    @property
    def url(self) -> str:
        return self.store.url(self.name)


class Shelf:
    """The stores a server offers, by name (``file``, ``indexeddb``, ``s3`` ...)."""

    def __init__(self, stores: dict[str, ModelStore]) -> None:
        self.stores = stores
        self._views = {name: Views(store) for name, store in stores.items()}

    def store(self, name: str) -> ModelStore:
        """The store called ``name``; raises UnknownStoreError naming the configured ones."""
        try:
            return self.stores[name]
        except KeyError:
            known = ", ".join(sorted(self.stores)) or "none"
            raise UnknownStoreError(
                f"there is no store {name!r}; configured stores: {known}"
            ) from None

    def views(self, name: str) -> Views:
        """The derived views of the store called ``name`` (modelstore.views)."""
        return self._views[self.store(name).name]

    def resolve(self, url: str) -> ModelRef:
        """``indexeddb://my-model`` -> the store and model name; raises on a malformed URL."""
        scheme, separator, name = url.partition("://")
        if not separator or not scheme or not name:
            raise InvalidModelUrlError(
                f"{url!r} is not a model URL; write it as STORE://NAME, e.g. indexeddb://my-model"
            )
        store = self.store(scheme)
        return ModelRef(store, layout.validate_model_name(name))

    async def copy(self, source: str, destination: str) -> VersionInfo:
        """Copy the source's current version to a new version of the destination.

        The destination counts only once its files' sizes and sha256 match the source's.
        Raises SameSourceAndDestinationError, ModelNotFoundError, IntegrityError.
        """
        source_ref, destination_ref = self._transfer_refs(source, destination)
        return await copy_version(source_ref, destination_ref, None)

    async def move(self, source: str, destination: str) -> VersionInfo:
        """Move every version (oldest first) and then remove the source.

        The source is removed only after each destination version is committed and
        verified (TF.js's own moveModel deletes first and can lose the model).
        """
        source_ref, destination_ref = self._transfer_refs(source, destination)
        version_ids = await source_ref.store.version_ids(source_ref.name)
        if not version_ids:
            # Not versions(): a save landing meanwhile would make it return, and the move
            # would go on with nothing to move (the 500 of issue 8.9).
            raise ModelNotFoundError(f"there is no model {source_ref.url!r}")
        aliases = await source_ref.store.aliases.all(source_ref.name)
        destination_aliases = destination_ref.store.aliases
        copies: list[VersionInfo] = []
        try:
            for version_id in version_ids:
                copies.append(await copy_version(source_ref, destination_ref, version_id))
            copied = dict(zip(version_ids, (copy.id for copy in copies), strict=True))
            for alias, target in aliases.items():  # a move carries its aliases along
                if target in copied:
                    await destination_aliases.point(destination_ref.name, alias, copied[target])
        except BaseException:
            await destination_aliases.forget(destination_ref.name, aliases)
            for copy in reversed(copies):  # all or nothing: a retry must not duplicate
                await destination_ref.store.remove(destination_ref.name, copy.id)
            raise
        await source_ref.store.aliases.forget(source_ref.name, aliases)
        for version_id in version_ids:  # only what was copied: a save meanwhile stays
            await source_ref.store.remove(source_ref.name, version_id)
        return copies[-1]

    def _transfer_refs(self, source: str, destination: str) -> tuple[ModelRef, ModelRef]:
        source_ref, destination_ref = self.resolve(source), self.resolve(destination)
        if source_ref.url == destination_ref.url:
            raise SameSourceAndDestinationError(
                f"source and destination are both {source_ref.url!r}; name another destination"
            )
        return source_ref, destination_ref

    async def close(self) -> None:
        for store in self.stores.values():
            await store.close()


async def copy_version(
    source: ModelRef, destination: ModelRef, version_id: str | None
) -> VersionInfo:
    """Copy one version and verify it arrived intact; raises IntegrityError otherwise."""
    original = await source.store.version(source.name, version_id)
    model_json = await source.store.original_model_json(source.name, original.id)

    async def weight_files() -> AsyncIterator[WeightUpload]:
        for stored in original.files:
            _info, stream = await source.store.open_weight_file(
                source.name, original.id, stored.path
            )
            try:
                yield WeightUpload(stored.path, stream.chunks)
            finally:
                await stream.aclose()

    copied = await destination.store.save(destination.name, model_json, weight_files())
    if _fingerprint(copied) != _fingerprint(original):
        await destination.store.remove(destination.name, copied.id)
        raise IntegrityError(
            f"copy of {source.url!r} to {destination.url!r} arrived with other bytes; "
            f"nothing was kept, try again"
        )
    return copied


def _fingerprint(version: VersionInfo) -> list[tuple[str, int, str]]:
    files = [version.modelJson, *version.files]
    return [(item.path, item.size, item.sha256) for item in files]
