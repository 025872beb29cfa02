"""A store of versioned models over one backend: the one place that knows what a model is."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from modelshelf.backends.errors import (
    InsufficientStorageError,
    NotFoundError,
    StorageError,
    UnavailableError,
)
from modelshelf.backends.ops import delete_if_present, iter_keys, put_bytes, read_all
from modelshelf.backends.protocol import Backend, ObjectStream
from modelshelf.modelstore import layout
from modelshelf.modelstore.aliases import AliasBook
from modelshelf.modelstore.claims import CommitClaim
from modelshelf.modelstore.errors import (
    AliasNotFoundError,
    InvalidAliasError,
    InvalidModelError,
    ModelNotFoundError,
    PayloadTooLargeError,
    PreconditionFailedError,
    VersionFilesMissingError,
    VersionInUseError,
    VersionNotFoundError,
    WeightFileNotFoundError,
)
from modelshelf.modelstore.manifest import ValidatedModelJson, WeightFileSpec, normalize_weight_path
from modelshelf.modelstore.parsing import parse_model_json
from modelshelf.modelstore.quota import QuotaLedger, Reservation, unlimited
from modelshelf.modelstore.records import (
    SCHEMA,
    ArtifactsRecord,
    FileRecord,
    FramedPayload,
    VersionRecord,
    from_schema_1,
    open_framed,
    to_version_info,
)
from modelshelf.modelstore.served import ServedModelJson, held_stream, open_served
from modelshelf.modelstore.version_cache import CachedVersion, VersionCache, keeps_served
from modelshelf.modelstore.version_ids import is_version_id, iso_date, new_version_id
from modelshelf.modelstore.weights import WeightStreamChecker
from modelshelf.schemas.errors import CodedError
from modelshelf.schemas.versions import StoredFile, VersionInfo

DEFAULT_MAX_MODEL_JSON_BYTES = 64 << 20
PUBLISH_ATTEMPTS = 5
DISCARD_WAIT_SECONDS = 5.0  # a failed save's answer waits this long for its cleanup
READY_TIMEOUT_SECONDS = 5.0
READY_PROBE_KEY = "~readyz"
logger = logging.getLogger(__name__)


@dataclass(slots=True)
class WeightUpload:
    """One weight file arriving for a save, named as model.json's manifest names it."""

    path: str
    chunks: AsyncIterable[bytes]


@dataclass(slots=True)
class VersionPage:
    """A page of a model's versions, oldest first; ``next_cursor`` names older ones."""

    versions: list[VersionInfo]
    next_cursor: str | None


@dataclass(slots=True)
class ModelPage:
    """One page of a model listing: each model's current version, and the next cursor."""

    models: dict[str, VersionInfo]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Pruned:
    """What a prune removed (or, dry, would remove) and kept, oldest first."""

    removed: list[str]
    kept: list[str]


class ModelStore:
    """Versioned TF.js models in one backend, under the store name ``name``."""

    def __init__(
        self,
        name: str,
        backend: Backend,
        *,
        kind: str = "memory",
        quota_bytes: int | None = None,
        max_model_json_bytes: int = DEFAULT_MAX_MODEL_JSON_BYTES,
        keep_versions: int | None = None,
    ) -> None:
        self.name = name
        self.backend = backend
        self.kind = kind  # the backend's URL scheme: what /v1/stores reports
        self.quota_bytes = quota_bytes
        self.max_model_json_bytes = max_model_json_bytes
        self.keep_versions = keep_versions  # retention: None keeps every version
        self._ledger = QuotaLedger(name, quota_bytes) if quota_bytes is not None else None
        self._cleanups: set[asyncio.Task[None]] = set()
        self._pending_discards: set[tuple[str, str]] = set()  # cleanups to try again
        self._saving: set[tuple[str, str]] = set()  # (model, version) of saves in flight
        self._cache = VersionCache()  # committed versions, and the heads last seen
        self._indexed = False  # models of release 0.1.0 have heads (see _index_schema_1)
        # NAME/model.json for static servers, where a static server can reach the values.
        self.static_copy = backend.capabilities.plain_objects
        self.aliases = AliasBook(backend, f"{name}://")

    def url(self, model_name: str) -> str:
        """The model's URL as TF.js writes it: ``indexeddb://my-model``."""
        return f"{self.name}://{model_name}"

    # -- saving ----------------------------------------------------------------------------

    async def save(
        self,
        model_name: str,
        model_json: bytes,
        weight_files: AsyncIterable[WeightUpload] | None = None,
        *,
        expected_bytes: int | None = None,
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> VersionInfo:
        """Store a new version and make it current once every byte is stored.

        Args:
            model_name: the model's name in this store.
            model_json: model.json as uploaded; kept byte for byte.
            weight_files: the manifest's files in manifest order; files of an
                all-empty tail may be left out.
            expected_bytes: at most this many bytes will arrive, if known: a save that
                cannot fit the quota is refused before its first byte is stored.
            if_match: save only if this version is the current one, checked before the
                first byte is stored and again, atomically, at the commit (modelstore.claims).
            if_none_match: save only if the model does not exist yet, likewise.

        Raises:
            InvalidNameError, InvalidModelError, WeightSizeMismatchError,
            QuotaExceededError, PayloadTooLargeError, PreconditionFailedError, StorageError.
        """
        layout.validate_model_name(model_name)
        max_key_bytes = self.backend.capabilities.max_key_bytes
        layout.check_key_room(model_name, max_key_bytes)
        if len(model_json) > self.max_model_json_bytes:
            raise PayloadTooLargeError(
                f"model.json is {len(model_json)} bytes; the limit is {self.max_model_json_bytes}"
            )
        version_id = new_version_id()
        prefix = layout.weight_file_prefix(model_name, version_id)
        model = await asyncio.to_thread(parse_model_json, model_json, prefix)
        for spec in model.files:  # before the first byte is stored (issue 8.4)
            layout.check_weight_key_room(model_name, spec.path, max_key_bytes)
        claim = await self._commit_claim(model_name, if_match, if_none_match)
        reservation = await self.reserve(expected_bytes)
        self._saving.add((model_name, version_id))
        try:
            record = await self._store_version(
                model_name, version_id, model, model_json, weight_files, reservation, claim
            )
        except BaseException:
            await self._discard_soon(model_name, version_id)
            raise
        finally:
            reservation.release()
            self._saving.discard((model_name, version_id))
        # Committed: whatever happens to the head and the static copy now, the save succeeded.
        await self._publish_after_commit(model_name, record, model.served.chunks)
        await self._retry_discards()
        if self.keep_versions is not None:
            await self._retain(model_name, self.keep_versions)
        return to_version_info(record)

    async def _store_version(
        self,
        model_name: str,
        version_id: str,
        model: ValidatedModelJson,
        model_json: bytes,
        weight_files: AsyncIterable[WeightUpload] | None,
        reservation: Reservation,
        claim: CommitClaim | None = None,
    ) -> VersionRecord:
        checker = WeightStreamChecker(model.entries)
        stored = await self._store_weight_files(
            model_name, version_id, model, weight_files, checker, reservation
        )
        checker.finish()
        record = _version_record(version_id, model, model_json, stored, checker.total)
        line = record.line()
        # The version object, the head and the static copy written after the commit: room now.
        catalog = 2 * (len(line) + model.served.size) + len(model_json)
        catalog += model.served.size if self.static_copy else 0
        reservation.spend(catalog)
        key = layout.version_key(model_name, version_id)
        if claim is not None:
            await claim.take(version_id)
        try:
            await self.backend.put(key, _framed([line], model.served.chunks(), [model_json]))
        except BaseException:
            if claim is not None:
                await asyncio.shield(claim.release())
            raise
        reservation.stored(catalog)
        served = b"".join(model.served.chunks()) if keeps_served(model.served.size) else None
        self._cache.remember(model_name, key, record, served)
        return record

    async def _commit_claim(
        self, model_name: str, if_match: str | None, if_none_match: bool
    ) -> CommitClaim | None:
        """Check a conditional save's condition now (412 before any byte is stored) and
        return the claim that decides it at the commit."""
        current = await self._current_id(model_name) if if_none_match or if_match else None
        if if_none_match:
            if current is not None:
                raise PreconditionFailedError(
                    f"{self.url(model_name)} exists already (If-None-Match: *)"
                )
            return CommitClaim(
                self.backend,
                layout.creation_claim_key(model_name),
                refused=f"{self.url(model_name)} was created by another save meanwhile",
                still_holds=functools.partial(self._absent, model_name),
                committed=functools.partial(self._committed, model_name),
            )
        if if_match is None:
            return None
        if current != if_match:
            state = f"its current version is {current}" if current else "it does not exist"
            raise PreconditionFailedError(
                f"{self.url(model_name)} is not at version {if_match} (If-Match): {state}; "
                f"load the current version and save again"
            )
        return CommitClaim(
            self.backend,
            layout.successor_claim_key(model_name, if_match),
            refused=f"another save of {self.url(model_name)} succeeded {if_match} meanwhile",
            still_holds=functools.partial(self._nothing_newer, model_name, if_match),
            committed=functools.partial(self._committed, model_name),
        )

    async def _current_id(self, model_name: str) -> str | None:
        try:
            return (await self.version(model_name)).id
        except ModelNotFoundError:
            return None

    async def _absent(self, model_name: str) -> bool:
        return not await self.version_ids(model_name)

    async def _nothing_newer(self, model_name: str, version_id: str) -> bool:
        return not await self._newer_version_ids(model_name, version_id)

    async def _committed(self, model_name: str, version_id: str) -> bool:
        return version_id in await self.version_ids(model_name)

    async def _store_weight_files(
        self,
        model_name: str,
        version_id: str,
        model: ValidatedModelJson,
        weight_files: AsyncIterable[WeightUpload] | None,
        checker: WeightStreamChecker,
        reservation: Reservation,
    ) -> list[FileRecord]:
        expected = list(model.files)
        stored: list[FileRecord] = []
        async for upload in weight_files or _no_uploads():
            spec = _match_upload(upload.path, expected, len(stored))
            stored.append(
                await self._store_weight_file(
                    model_name, version_id, spec, upload.chunks, checker, reservation
                )
            )
            _finish_group_if_complete(model, spec, len(stored), checker)
        for spec in expected[len(stored) :]:
            _require_nothing_pending(checker, spec)
            stored.append(
                await self._store_weight_file(
                    model_name, version_id, spec, _no_bytes(), checker, reservation
                )
            )
            _finish_group_if_complete(model, spec, len(stored), checker)
        return stored

    async def _store_weight_file(
        self,
        model_name: str,
        version_id: str,
        spec: WeightFileSpec,
        chunks: AsyncIterable[bytes],
        checker: WeightStreamChecker,
        reservation: Reservation,
    ) -> FileRecord:
        digest = hashlib.sha256()
        key = layout.weight_file_key(model_name, version_id, spec.path)
        info = await self.backend.put(key, _metered(chunks, checker, digest, reservation))
        reservation.stored(info.size)
        return FileRecord(path=spec.path, size=info.size, sha256=digest.hexdigest())

    async def reserve(self, expected_bytes: int | None) -> Reservation:
        """Room in the quota for bytes about to be stored (a save's, or a derived view's);
        raises QuotaExceededError. The caller releases it when done, either way."""
        if self._ledger is None:
            return unlimited()
        return await self._ledger.reserve(self.usage, expected_bytes)

    async def usage(self) -> int:
        """Bytes stored in this store, every version of every model counted."""
        return sum([info.size async for info in iter_keys(self.backend)])

    def saves_in_flight(self) -> frozenset[tuple[str, str]]:
        """(model name, version id) of this process's saves not yet ended: gc leaves them."""
        return frozenset(self._saving)

    async def forget_stored(self, size: int) -> None:
        """The quota stops counting ``size`` bytes that gc removed outside a save or remove."""
        if self._ledger is not None:
            await self._ledger.forget(size)

    async def _discard_soon(self, model_name: str, version_id: str) -> None:
        """Remove what a failed save stored; the answer waits for it only so long.

        Never raises: the client must hear why the save failed, not why its cleanup did.
        """
        task = asyncio.create_task(self._discard_version(model_name, version_id))
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), DISCARD_WAIT_SECONDS)

    async def _discard_version(self, model_name: str, version_id: str) -> None:
        """Delete a version's keys, commit key first; a store that is down stops the attempt."""
        self._cache.forget(model_name, version_id)
        keys = [
            layout.version_key(model_name, version_id),
            layout.record_key(model_name, version_id),  # schema 1
            layout.original_model_json_key(model_name, version_id),
            layout.served_model_json_key(model_name, version_id),
        ]
        try:
            folder = layout.version_folder(model_name, version_id)
            keys += [info.key async for info in iter_keys(self.backend, folder)]
            for key in keys:
                await delete_if_present(self.backend, key)
        except (UnavailableError, InsufficientStorageError) as error:
            # A store that is down, or a SQLite file that cannot even log a delete on a full
            # disk: try again after the next save that succeeds.
            self._pending_discards.add((model_name, version_id))
            logger.warning(
                "could not clean up version %s of %s yet (%s); retried after the next save",
                version_id,
                self.url(model_name),
                error,
            )
        except StorageError:
            logger.exception("cleanup of version %s of %s failed", version_id, model_name)
        else:
            self._pending_discards.discard((model_name, version_id))

    async def _retry_discards(self) -> None:
        for model_name, version_id in list(self._pending_discards):
            await self._discard_version(model_name, version_id)

    # -- the head: the current version in one read -------------------------------------------

    async def _publish_after_commit(
        self,
        model_name: str,
        record: VersionRecord | None = None,
        served: Callable[[], Iterable[bytes]] | None = None,
    ) -> None:
        """Point the head (and the static copy) at the newest committed version.

        ``record`` and ``served`` are what a save just committed, so a save writes its head
        without reading anything back. The commit already happened, so this never raises: if
        the head cannot be written it is removed, and loads find the newest version by
        listing until the next save or remove writes it again.
        """
        try:
            if record is None or served is None:
                await self._publish_newest(model_name)
            else:
                await self._publish(model_name, record, _replayable(served))
                if await self._newer_version_ids(model_name, record.id):
                    await self._publish_newest(model_name)  # a newer save raced ours
        except CodedError as error:
            logger.error(
                "%s is committed but its head could not be written (%s); removing the stale "
                "head, the next save or remove writes it again",
                self.url(model_name),
                error,
            )
            self._cache.forget_head(model_name)
            for key in (layout.head_key(model_name), layout.published_model_json_key(model_name)):
                with contextlib.suppress(CodedError):
                    await delete_if_present(self.backend, key)

    async def _publish(
        self, model_name: str, record: VersionRecord, served: Callable[[], AsyncIterator[bytes]]
    ) -> None:
        key = layout.head_key(model_name)
        head = await self.backend.put(key, _prefixed(record.line(), served()))
        self._cache.saw_head(model_name, head.etag, record.id)
        if self.static_copy:
            await self.backend.put(layout.published_model_json_key(model_name), served())

    async def _publish_newest(self, model_name: str) -> None:
        """Re-point the head at the newest version, read from the store (removes, races)."""
        for _ in range(PUBLISH_ATTEMPTS):
            version_ids = await self.version_ids(model_name)
            if not version_ids:
                self._cache.forget_head(model_name)
                await delete_if_present(self.backend, layout.head_key(model_name))
                await delete_if_present(self.backend, layout.published_model_json_key(model_name))
                return
            try:
                record, served = await self._read_served(model_name, version_ids[-1])
            except NotFoundError:
                continue  # removed meanwhile: look again
            await self._publish(model_name, record, functools.partial(_once, served))
            if not await self._newer_version_ids(model_name, record.id):
                return

    async def _newer_version_ids(self, model_name: str, version_id: str) -> list[str]:
        """Committed versions newer than ``version_id``: one listing of at most one page."""
        prefix = layout.catalog_prefix(model_name)
        page = await self.backend.list(
            prefix, start_after=f"{prefix}{version_id}\U0010ffff", limit=8
        )
        found = [layout.parse_version_key(info.key) for info in page.items]
        return [
            vid for parsed in found if parsed and parsed[0] == model_name for vid in [parsed[1]]
        ]

    async def _current(self, model_name: str) -> tuple[CachedVersion, ObjectStream | None] | None:
        """The current version, and its served model.json as a stream unless held in memory;
        None if there is no head.

        One small call (``head``) when the head is as last seen and its version is held; a
        save or remove anywhere else changes the head's etag, so it is seen at once.
        """
        key = layout.head_key(model_name)
        known = self._cache.head(model_name)
        cached = self._cache.get(model_name, known.version_id) if known else None
        if known is not None and cached is not None and cached.served is not None:
            try:
                found = await self.backend.head(key)
            except NotFoundError:
                self._cache.forget_head(model_name)
                return None
            if found.etag == known.etag:
                return cached, None
        try:
            stream = await self.backend.get(key)
        except NotFoundError:
            self._cache.forget_head(model_name)
            return None
        record, payload = await open_framed(stream)
        self._cache.saw_head(model_name, stream.info.etag, record.id)
        source = layout.version_key(model_name, record.id)
        if not keeps_served(record.served_bytes):
            return self._cache.remember(model_name, source, record), payload.stream(
                record.served_bytes
            )
        try:
            served = await payload.read(record.served_bytes)
        finally:
            await payload.aclose()
        return self._cache.remember(model_name, source, record, served), None

    # -- reading ---------------------------------------------------------------------------

    async def version_ids(self, model_name: str) -> list[str]:
        """Committed version ids of a model, oldest first; empty when it does not exist."""
        layout.validate_model_name(model_name)
        prefix = layout.catalog_prefix(model_name)
        found = [
            layout.parse_version_key(info.key) async for info in iter_keys(self.backend, prefix)
        ]
        return sorted({parsed[1] for parsed in found if parsed and parsed[0] == model_name})

    async def version(self, model_name: str, version_id: str | None = None) -> VersionInfo:
        """One version (the current one by default, or an alias's); raises
        Model/VersionNotFoundError."""
        version_id = await self.resolve(model_name, version_id)
        return (await self._version(model_name, version_id, confirm=True)).info

    async def resolve(self, model_name: str, version_or_alias: str | None) -> str | None:
        """The version id ``version_or_alias`` names (None: the current version, unresolved).

        Raises VersionNotFoundError for an alias that does not exist or a malformed id.
        """
        if version_or_alias is None or is_version_id(version_or_alias):
            return version_or_alias
        try:
            layout.validate_alias(version_or_alias)
        except InvalidAliasError:
            _check_version_id(version_or_alias)
        try:
            return await self.aliases.target(model_name, version_or_alias)
        except AliasNotFoundError:
            raise VersionNotFoundError(
                f"{self.url(model_name)} has no version or alias {version_or_alias!r}"
            ) from None

    async def set_alias(
        self,
        model_name: str,
        alias: str,
        version: str,
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> str:
        """Point ``alias`` at a version (an id, or another alias); returns the version id.

        Raises Model/VersionNotFoundError, InvalidAliasError, PreconditionFailedError.
        """
        layout.validate_alias(alias)
        target = (await self.version(model_name, version)).id
        await self.aliases.point(
            model_name, alias, target, if_match=if_match, if_none_match=if_none_match
        )
        return target

    async def _version(
        self, model_name: str, version_id: str | None, *, confirm: bool
    ) -> CachedVersion:
        """A version (None: the current one), from memory where it is held.

        ``confirm`` asks the store whether a held version still exists (one ``head``): a
        remove through another process is then seen at once. Without it, a held version
        answers from memory alone, for callers that read the version's files next anyway.
        """
        if version_id is None:
            layout.validate_model_name(model_name)
            current = await self._current(model_name)
            if current is not None:
                cached, stream = current
                if stream is not None:
                    await stream.aclose()
                return cached
            version_id = await self._newest_by_listing(model_name)
        _check_version_id(version_id)
        held = self._cache.get(model_name, version_id)
        if held is not None and (not confirm or await self._still_there(held)):
            return held
        cached, payload = await self._open_version(model_name, version_id)
        await payload.aclose()
        return cached

    async def _still_there(self, cached: CachedVersion) -> bool:
        try:
            await self.backend.head(cached.key)
        except NotFoundError:
            return False
        return True

    async def _newest_by_listing(self, model_name: str) -> str:
        """The newest version when the head is missing (not yet written, or lost)."""
        version_ids = await self.version_ids(model_name)
        if not version_ids:
            raise ModelNotFoundError(f"there is no model {self.url(model_name)!r}")
        return version_ids[-1]

    async def _open_version(
        self, model_name: str, version_id: str
    ) -> tuple[CachedVersion, FramedPayload]:
        """A version's record, then its served model.json and (schema 2) its original."""
        key = layout.version_key(model_name, version_id)
        try:
            stream = await self.backend.get(key)
        except NotFoundError:
            return await self._open_schema_1(model_name, version_id)
        record, payload = await open_framed(stream)
        return self._cache.remember(model_name, key, record), payload

    async def _open_schema_1(
        self, model_name: str, version_id: str
    ) -> tuple[CachedVersion, FramedPayload]:
        """A version saved by release 0.1.0: record.json, then its served model.json."""
        record_key = layout.record_key(model_name, version_id)
        try:
            raw = await read_all(self.backend, record_key)
        except NotFoundError:
            raise await self._version_missing(model_name, version_id) from None

        async def compute() -> ServedModelJson:  # versions saved before served.json existed
            original = await self.original_model_json(model_name, version_id)
            prefix = layout.weight_file_prefix(model_name, version_id)
            return (await asyncio.to_thread(parse_model_json, original, prefix)).served

        key = layout.served_model_json_key(model_name, version_id)
        served = await open_served(self.backend, key, compute)
        record = from_schema_1(raw, served.info.size)
        return self._cache.remember(model_name, record_key, record), FramedPayload(served)

    async def _read_served(self, model_name: str, version_id: str) -> tuple[VersionRecord, bytes]:
        cached, payload = await self._open_version(model_name, version_id)
        try:
            return cached.record, await payload.read(cached.record.served_bytes)
        finally:
            await payload.aclose()

    async def version_page(
        self, model_name: str, *, limit: int | None = None, before: str | None = None
    ) -> VersionPage:
        """The newest ``limit`` versions older than ``before``, oldest first.

        Reads only the page's records (one listing of ids first); ``next_cursor`` pages on to
        older versions. Raises ModelNotFoundError.
        """
        version_ids = await self.version_ids(model_name)
        if not version_ids:
            raise ModelNotFoundError(f"there is no model {self.url(model_name)!r}")
        older = [vid for vid in version_ids if before is None or vid < before]
        chosen = older[-limit:] if limit is not None else older
        versions = await self._versions_of(model_name, chosen)
        more = len(chosen) < len(older)
        return VersionPage(versions, chosen[0] if more and chosen else None)

    async def versions(self, model_name: str) -> list[VersionInfo]:
        """Every version, oldest first; raises ModelNotFoundError."""
        versions = await self._versions_of(model_name, await self.version_ids(model_name))
        if not versions:
            raise ModelNotFoundError(f"there is no model {self.url(model_name)!r}")
        return versions

    async def _versions_of(self, model_name: str, version_ids: list[str]) -> list[VersionInfo]:
        versions = []
        for version_id in version_ids:  # just listed: held versions need no confirming
            try:
                versions.append((await self._version(model_name, version_id, confirm=False)).info)
            except VersionNotFoundError:
                continue  # removed concurrently
        return versions

    async def original_model_json(self, model_name: str, version_id: str) -> bytes:
        """model.json exactly as it was saved."""
        _check_version_id(version_id)
        try:
            stream = await self.backend.get(layout.version_key(model_name, version_id))
        except NotFoundError:
            return await self._original_schema_1(model_name, version_id)
        record, payload = await open_framed(stream)
        try:
            await payload.read(record.served_bytes)  # skip the served copy
            return await payload.read(record.model_json.size)
        finally:
            await payload.aclose()

    async def _original_schema_1(self, model_name: str, version_id: str) -> bytes:
        try:
            return await read_all(
                self.backend, layout.original_model_json_key(model_name, version_id)
            )
        except NotFoundError:
            raise await self._version_missing(model_name, version_id) from None

    async def published_model_json(self, model_name: str, version_id: str | None) -> bytes:
        """model.json as served: weight paths point at the version's immutable files."""
        _version, stream = await self.open_model_json(model_name, version_id)
        try:
            return b"".join([chunk async for chunk in stream])
        finally:
            await stream.aclose()

    async def open_model_json(
        self, model_name: str, version_id: str | None = None
    ) -> tuple[VersionInfo, ObjectStream]:
        """A version (the current one by default) and its served model.json, size known.

        The current version is one read: its head holds both.
        """
        version_id = await self.resolve(model_name, version_id)
        if version_id is None:
            layout.validate_model_name(model_name)
            current = await self._current(model_name)
            if current is not None:
                return _served_stream(*current)
            version_id = await self._newest_by_listing(model_name)
        _check_version_id(version_id)
        cached = self._cache.get(model_name, version_id)
        if cached is not None and cached.served is not None and await self._still_there(cached):
            return _served_stream(cached, None)
        cached, payload = await self._open_version(model_name, version_id)
        size = cached.record.served_bytes
        if not keeps_served(size):
            return cached.info, payload.stream(size)
        try:
            served = await payload.read(size)
        finally:
            await payload.aclose()
        return _served_stream(self._cache.remember(model_name, cached.key, cached.record, served))

    async def weight_file(
        self, model_name: str, version_id: str, path: str, *, confirm: bool = True
    ) -> StoredFile:
        """What a version records of one weight file, ``path`` as a URL names it; no byte read.

        A version held in memory is confirmed with one ``head`` (removed elsewhere: 404, not
        a 304 from memory); ``confirm=False`` skips that for a caller about to read the file.

        Raises WeightFileNotFoundError, also for a path no save could have stored.
        """
        try:
            path = normalize_weight_path(path)
        except InvalidModelError:
            raise WeightFileNotFoundError(f"there is no weight file {path!r}") from None
        record = (await self._version(model_name, version_id, confirm=confirm)).record
        stored = next((item for item in record.files if item.path == path), None)
        if stored is None:
            raise WeightFileNotFoundError(
                f"version {version_id} of {self.url(model_name)!r} has no weight file {path!r}"
            )
        return StoredFile(**stored.model_dump())

    async def open_weight_file(
        self, model_name: str, version_id: str, path: str, *, start: int = 0, end: int | None = None
    ) -> tuple[StoredFile, ObjectStream]:
        """Open one stored weight file of a version for reading its bytes ``[start, end)``.

        The range is the backend's (``Backend.get``); by default the whole file.

        Raises WeightFileNotFoundError, also for a path no save could have stored, and
        InvalidRangeError for a range that reads nothing.
        """
        # The read of the file itself finds out if the version is gone.
        stored = await self.weight_file(model_name, version_id, path, confirm=False)
        key = layout.weight_file_key(model_name, version_id, stored.path)
        try:
            return stored, await self.backend.get(key, start=start, end=end)
        except NotFoundError:
            self._cache.forget(model_name, version_id)
            raise await self._version_missing(model_name, version_id, stored.path) from None

    async def list_models(
        self, prefix: str = "", *, cursor: str | None = None, limit: int = 1000
    ) -> ModelPage:
        """Models whose names start with ``prefix``, with their current versions.

        One listing page of heads and one read per model: a page costs O(limit).
        """
        await self._index_schema_1()
        start = layout.head_key(cursor) if cursor else None
        names: list[str] = []
        more = False
        async for name in self._head_names(prefix, start, limit + 1):
            if len(names) == limit:
                more = True
                break
            names.append(name)
        found: dict[str, VersionInfo] = {}
        for name in names:
            current = await self._current(name)
            if current is None:
                continue  # removed concurrently
            cached, stream = current
            if stream is not None:
                await stream.aclose()
            found[name] = cached.info
        return ModelPage(found, names[-1] if more else None)

    async def count_models(self) -> int:
        """How many models the store holds: a listing of heads, no model read."""
        await self._index_schema_1()
        return sum([1 async for _ in self._head_names("", None, 1000)])

    async def _head_names(
        self, prefix: str, start_after: str | None, page_size: int
    ) -> AsyncIterator[str]:
        listing_prefix = f"{layout.HEADS}/{prefix}"
        while True:
            page = await self.backend.list(
                listing_prefix, start_after=start_after, limit=min(page_size, 1000)
            )
            for info in page.items:
                name = layout.parse_head_key(info.key)
                if name is not None and name.startswith(prefix):
                    yield name
            if page.next_cursor is None:
                return
            start_after = page.next_cursor

    async def _index_schema_1(self) -> None:
        """Give every model saved by release 0.1.0 its head, once per store (``~schema``).

        A store that cannot be written (read-only, down) is indexed on a later listing; its
        listing meanwhile shows the models that have heads.
        """
        if self._indexed:
            return
        try:
            await self.backend.head(layout.SCHEMA_KEY)
        except NotFoundError:
            try:
                await self._write_schema_1_heads()
            except StorageError as error:
                logger.warning("%s: older models not indexed yet (%s)", self.name, error)
                return
        self._indexed = True

    async def _write_schema_1_heads(self) -> None:
        names = {
            parsed[0]
            async for info in iter_keys(self.backend, layout.CATALOG + "/")
            if (parsed := layout.parse_record_key(info.key))
        }
        for name in sorted(names):
            if await self._current(name) is None:
                await self._publish_newest(name)
        await put_bytes(self.backend, layout.SCHEMA_KEY, b"%d\n" % SCHEMA)

    async def _version_missing(
        self, model_name: str, version_id: str, path: str = layout.MODEL_JSON
    ) -> CodedError:
        """Why a file of a version could not be read: removed meanwhile, or damaged."""
        version_ids = await self.version_ids(model_name)
        if not version_ids:
            return ModelNotFoundError(f"there is no model {self.url(model_name)!r}")
        if version_id not in version_ids:
            return VersionNotFoundError(
                f"model {self.url(model_name)!r} has no version {version_id!r}"
            )
        # Committed, yet a file is gone: retrying will not help (issue 8.8).
        logger.error("version %s of %s lacks its file %r", version_id, model_name, path)
        return VersionFilesMissingError(
            f"version {version_id} of {self.url(model_name)!r} is committed but its file "
            f"{path!r} is missing from the store; restore the store from a backup, or remove "
            f"this version and save it again"
        )

    # -- removing --------------------------------------------------------------------------

    async def remove(self, model_name: str, version_id: str | None = None) -> list[VersionInfo]:
        """Remove one version, or the whole model; returns the versions before removal.

        Removing the current version makes the newest remaining one current; removing
        the last one removes the model. Raises Model/VersionNotFoundError.
        """
        version_id = await self.resolve(model_name, version_id)
        versions = await self.versions(model_name)
        doomed = [v for v in versions if version_id is None or v.id == version_id]
        if not doomed:
            raise await self._version_missing(model_name, version_id or "")
        aliases = await self.aliases.all(model_name)
        if version_id is not None:
            pointing = [alias for alias, target in aliases.items() if target == version_id]
            if pointing:
                raise VersionInUseError(
                    f"version {version_id} of {self.url(model_name)} is what "
                    f"{', '.join(repr(a) for a in pointing)} points at; move or delete "
                    f"{'that alias' if len(pointing) == 1 else 'those aliases'} first"
                )
        else:
            await self.aliases.forget(model_name, aliases)
        for version in doomed:  # un-commit first: nothing can make them current again
            self._cache.forget(model_name, version.id)
            await delete_if_present(self.backend, layout.version_key(model_name, version.id))
            await delete_if_present(self.backend, layout.record_key(model_name, version.id))
            await delete_if_present(
                self.backend, layout.successor_claim_key(model_name, version.id)
            )
        if version_id is None:
            await delete_if_present(self.backend, layout.creation_claim_key(model_name))
        # Re-publish before deleting files, so the head never names deleted weights.
        await self._publish_after_commit(model_name)
        for version in reversed(doomed):
            await self._discard_version(model_name, version.id)
        return versions

    async def prune(self, model_name: str, keep: int, *, dry_run: bool = False) -> Pruned:
        """Remove all but the newest ``keep`` versions, never one an alias points to.

        Raises ModelNotFoundError; ValueError for ``keep`` below 1.
        """
        if keep < 1:
            raise ValueError("prune keeps at least 1 version")
        version_ids = await self.version_ids(model_name)
        if not version_ids:
            raise ModelNotFoundError(f"there is no model {self.url(model_name)!r}")
        aliased = set((await self.aliases.all(model_name)).values())
        doomed = [vid for vid in version_ids[:-keep] if vid not in aliased]
        if not dry_run:
            for version_id in doomed:
                with contextlib.suppress(NotFoundError, VersionInUseError):  # raced: fine
                    await self.remove(model_name, version_id)
        kept = [vid for vid in version_ids if vid not in doomed]
        return Pruned(removed=doomed, kept=kept)

    async def _retain(self, model_name: str, keep: int) -> None:
        """Retention after a save: it succeeded already, so a failure here is only logged."""
        try:
            await self.prune(model_name, keep)
        except CodedError as error:
            logger.warning("retention of %s failed (%s)", self.url(model_name), error)

    async def readiness(self, within_seconds: float = READY_TIMEOUT_SECONDS) -> str:
        """``"ok"``, or why the backend is not ready: one cheap round trip, bounded in time.

        A HEAD of a key no model can have; each store runs on its own threads with its own
        timeout, so one stuck store reports only itself.
        """
        try:
            await asyncio.wait_for(self.backend.head(READY_PROBE_KEY), within_seconds)
        except NotFoundError:
            return "ok"
        except TimeoutError:
            return f"unavailable: no answer within {within_seconds:g} s"
        except Exception as error:  # any other failure means not ready; report it
            return f"{type(error).__name__}: {error}"
        return "ok"

    async def close(self) -> None:
        await self.backend.close()


async def _metered(
    chunks: AsyncIterable[bytes],
    checker: WeightStreamChecker,
    digest: Any,
    reservation: Reservation,
) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        reservation.spend(len(chunk))
        checker.feed(chunk)
        digest.update(chunk)
        yield chunk


def _match_upload(path: str, expected: list[WeightFileSpec], index: int) -> WeightFileSpec:
    normalized = normalize_weight_path(path)
    if index < len(expected) and expected[index].path == normalized:
        return expected[index]
    listed = [spec.path for spec in expected]
    if normalized not in listed:
        raise InvalidModelError(
            f"uploaded weight file {path!r} is not in model.json's weightsManifest paths {listed}"
        )
    raise InvalidModelError(
        f"weight file {path!r} arrived out of order; send the files in weightsManifest "
        f"order: {listed}"
    )


def _finish_group_if_complete(
    model: ValidatedModelJson, spec: WeightFileSpec, stored_count: int, checker: WeightStreamChecker
) -> None:
    is_last_of_group = all(later.group != spec.group for later in model.files[stored_count:])
    if is_last_of_group:
        checker.finish_group(spec.group)


def _require_nothing_pending(checker: WeightStreamChecker, spec: WeightFileSpec) -> None:
    try:
        checker.finish()
    except InvalidModelError:
        raise InvalidModelError(
            f"the upload has no data for weight file {spec.manifest_path!r} listed in "
            f"model.json; send it as a part named after its path"
        ) from None


def _version_record(
    version_id: str,
    model: ValidatedModelJson,
    model_json: bytes,
    stored: list[FileRecord],
    weight_bytes: int,
) -> VersionRecord:
    return VersionRecord(
        id=version_id,
        saved_at=iso_date(datetime.now(UTC)),
        artifacts=ArtifactsRecord(
            topology_bytes=model.topology_bytes,
            weight_specs_bytes=model.weight_specs_bytes,
            weight_data_bytes=weight_bytes,
        ),
        model_json=FileRecord(
            path=layout.MODEL_JSON,
            size=len(model_json),
            sha256=hashlib.sha256(model_json).hexdigest(),
        ),
        files=stored,
        served_bytes=model.served.size,
    )


def _served_stream(
    cached: CachedVersion, stream: ObjectStream | None = None
) -> tuple[VersionInfo, ObjectStream]:
    """A version's info and its served model.json: ``stream``, or the bytes held."""
    if stream is not None:
        return cached.info, stream
    assert cached.served is not None
    return cached.info, held_stream(cached.key, cached.served)


def _check_version_id(version_id: str) -> None:
    if not is_version_id(version_id):
        raise VersionNotFoundError(
            f"{version_id!r} is not a version id (like 20261126T003136123456Z-1a2b3c4d); "
            f"GET the model's info for its versions"
        )


async def _framed(*parts: Iterable[bytes]) -> AsyncIterator[bytes]:
    """A framed object (modelstore.records) from its pieces, in chunks."""
    for part in parts:
        for chunk in part:
            yield chunk


async def _prefixed(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield first
    async for chunk in rest:
        yield chunk


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _replayable(chunks: Callable[[], Iterable[bytes]]) -> Callable[[], AsyncIterator[bytes]]:
    async def replay() -> AsyncIterator[bytes]:
        for chunk in chunks():
            yield chunk

    return replay


async def _no_uploads() -> AsyncIterator[WeightUpload]:
    return
    yield


async def _no_bytes() -> AsyncIterator[bytes]:
    return
    yield
