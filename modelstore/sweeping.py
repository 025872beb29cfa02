"""Garbage collection: what saves killed midway left behind, which no committed version owns.

A save stores its weight files at ``NAME/~v/VID/PATH``, then commits by writing the version
object (modelstore.layout). A save killed before its commit (kill -9, a crash, a power cut)
leaves two kinds of garbage:

- the files it stored: keys of a version with no version object (nor a schema-1
  record.json), which listings and the quota count;
- what the backend held for the put in flight (``backends.ops.sweep_incomplete``): a SQLite
  staging blob, an S3 multipart upload, a temp file; listed nowhere, yet on disk or billed.

A view (modelstore.views) whose derivation was killed leaves its shards and its
``.making`` marker, with no record: gc removes them once the marker is older than the
threshold.

gc removes all of these once they are older than a threshold. A version id holds the time its save
began, so a version's files are as old as its id; the backend knows its own items' ages.
Across processes that threshold is what protects a save still running. In this process the
store also knows its saves in flight: their versions are never touched, and the backend's
threshold stretches back to cover their uploads.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from datetime import UTC, datetime, timedelta

from modelshelf.backends.errors import NotFoundError, StorageError
from modelshelf.backends.ops import delete_if_present, iter_keys, read_all, sweep_incomplete
from modelshelf.backends.protocol import Backend, ObjectInfo
from modelshelf.modelstore import layout
from modelshelf.modelstore.records import open_framed
from modelshelf.modelstore.shelf import Shelf
from modelshelf.modelstore.store import ModelStore
from modelshelf.modelstore.version_ids import version_time
from modelshelf.schemas.errors import CodedError
from modelshelf.schemas.maintenance import (
    DEFAULT_GC_AGE_SECONDS,
    GcReport,
    RemovedItem,
    StoreGcReport,
)

WEIGHT_FILE = "weight_file"
CATALOG_FILE = "catalog_file"  # schema 1: model.json and served.json before record.json
VIEW_FILE = "view_file"  # a view's shard or marker, its derivation killed before its record
CLOCK_SLACK_SECONDS = 60.0  # S3 dates an upload to the second, by the server's clock
VersionRef = tuple[str, str]  # (model name, version id)
logger = logging.getLogger(__name__)
# One collection per store at a time: two would report (and un-count) the same bytes twice.
_running: weakref.WeakKeyDictionary[ModelStore, asyncio.Lock] = weakref.WeakKeyDictionary()


async def collect_shelf_garbage(
    shelf: Shelf,
    older_than: int = DEFAULT_GC_AGE_SECONDS,
    *,
    dry_run: bool = False,
    store: str | None = None,
) -> GcReport:
    """Collect garbage in every store of ``shelf``, or in ``store`` only.

    Raises:
        UnknownStoreError: ``store`` names no configured store.
    """
    stores = [shelf.store(store)] if store is not None else list(shelf.stores.values())
    reports = [await collect_garbage(each, older_than, dry_run=dry_run) for each in stores]
    return GcReport(
        dryRun=dry_run,
        olderThan=older_than,
        stores=reports,
        freedBytes=sum(report.freedBytes for report in reports),
    )


async def collect_garbage(
    store: ModelStore, older_than: int = DEFAULT_GC_AGE_SECONDS, *, dry_run: bool = False
) -> StoreGcReport:
    """Remove what saves begun over ``older_than`` seconds ago and never committed left.

    With ``dry_run``, only report it. Never raises a StorageError: a store failing midway
    answers what went before, and why it stopped.
    """
    removed: list[RemovedItem] = []
    error: str | None = None
    async with _running.setdefault(store, asyncio.Lock()):
        try:
            await _collect(store, older_than, dry_run, removed)
        except StorageError as failure:
            logger.warning("gc of store %r stopped: %s", store.name, failure)
            error = str(failure)
        if not dry_run:
            await store.forget_stored(_counted_bytes(removed))
    freed = sum(item.size for item in removed)
    if removed and not dry_run:
        logger.info("gc freed %d bytes in %d items of store %r", freed, len(removed), store.name)
    return StoreGcReport(store=store.name, removed=removed, freedBytes=freed, error=error)


async def _collect(
    store: ModelStore, older_than: int, dry_run: bool, removed: list[RemovedItem]
) -> None:
    now = datetime.now(UTC)
    cutoff = now - timedelta(seconds=older_than)
    uncommitted = await _uncommitted_versions(store, cutoff)
    for name, version_id in uncommitted:
        await _remove_version(store, name, version_id, dry_run, removed)
    for key, size in await _unfinished_views(store, cutoff, set(uncommitted)):
        if dry_run or await delete_if_present(store.backend, key):
            removed.append(RemovedItem(kind=VIEW_FILE, name=key, size=size))
    swept = await sweep_incomplete(
        store.backend, _backend_age(store, now, older_than), dry_run=dry_run
    )
    removed += [RemovedItem(kind=item.kind, name=item.name, size=item.size) for item in swept]


async def _uncommitted_versions(store: ModelStore, cutoff: datetime) -> list[VersionRef]:
    """Versions begun before ``cutoff`` with files stored and no commit, in one listing."""
    committed: set[VersionRef] = set()
    stored: set[VersionRef] = set()
    async for info in iter_keys(store.backend):
        version = layout.parse_version_key(info.key)  # either schema's commit
        if version is not None:
            committed.add(version)
            continue
        owner = layout.parse_weight_file_key(info.key) or layout.parse_schema_1_file_key(info.key)
        if owner is not None and version_time(owner[1]) < cutoff:
            stored.add(owner)
    return sorted(stored - committed)


async def _unfinished_views(
    store: ModelStore, cutoff: datetime, removed_versions: set[VersionRef]
) -> list[tuple[str, int]]:
    """Keys of views with no record whose derivation began before ``cutoff``, marker last
    (views of ``removed_versions`` went with them)."""
    records: set[tuple[str, str, str]] = set()
    markers: dict[tuple[str, str, str], ObjectInfo] = {}
    files: dict[tuple[str, str, str], list[ObjectInfo]] = {}
    async for info in iter_keys(store.backend):
        parsed = layout.parse_view_key(info.key)
        if parsed is None or parsed[:2] in removed_versions:
            continue
        view, what = parsed[:3], parsed[3]
        if what == layout.VIEW_SUFFIX:
            records.add(view)
        elif what == layout.VIEW_MAKING_SUFFIX:
            markers[view] = info
        else:
            files.setdefault(view, []).append(info)
    doomed: list[tuple[str, int]] = []
    for view in sorted((set(files) | set(markers)) - records):
        marker = markers.get(view)
        if marker is not None and not await _began_before(store.backend, marker.key, cutoff):
            continue  # a derivation may still be running, here or in another process
        doomed += [(info.key, info.size) for info in files.get(view, [])]
        doomed += [(marker.key, marker.size)] if marker is not None else []
    return doomed


async def _began_before(backend: Backend, marker_key: str, cutoff: datetime) -> bool:
    try:
        began = datetime.fromisoformat((await read_all(backend, marker_key)).decode())
    except NotFoundError:
        return False  # finished or failed meanwhile: look again next time
    except (UnicodeDecodeError, ValueError):
        return True  # not ours to keep: nothing reads a damaged marker
    return began < cutoff


async def _remove_version(
    store: ModelStore, name: str, version_id: str, dry_run: bool, removed: list[RemovedItem]
) -> None:
    """Remove one uncommitted version's files, looking again first: it may have committed."""
    if (name, version_id) in store.saves_in_flight():
        return
    if await _owned(store.backend, name, version_id):
        return
    folders = [
        (layout.version_folder(name, version_id), WEIGHT_FILE),
        (layout.schema_1_folder(name, version_id), CATALOG_FILE),
    ]
    for folder, kind in folders:
        async for info in iter_keys(store.backend, folder):
            if kind == CATALOG_FILE and layout.parse_schema_1_file_key(info.key) is None:
                continue
            if dry_run or await delete_if_present(store.backend, info.key):
                removed.append(RemovedItem(kind=kind, name=info.key, size=info.size))


async def _owned(backend: Backend, name: str, version_id: str) -> bool:
    """Whether a commit (either schema) or the model's head names the version now.

    The head counts: a remove killed between un-committing a version and re-pointing the
    head leaves a head that still serves that version's files.
    """
    for key in (layout.version_key(name, version_id), layout.record_key(name, version_id)):
        try:
            await backend.head(key)
        except NotFoundError:
            continue
        return True
    return await _head_version(backend, name) in (version_id, "")


async def _head_version(backend: Backend, name: str) -> str | None:
    """The version the model's head names; None without a head, "" if it cannot be read."""
    try:
        stream = await backend.get(layout.head_key(name))
    except NotFoundError:
        return None
    try:
        record, payload = await open_framed(stream)
    except StorageError:
        raise
    except CodedError:  # damaged: keep whatever it may name
        return ""
    await payload.aclose()
    return record.id


def _backend_age(store: ModelStore, now: datetime, older_than: int) -> float:
    """The age past which the backend's own leftovers go: never younger than a save running."""
    started = [version_time(version_id) for _name, version_id in store.saves_in_flight()]
    if not started:
        return float(older_than)
    running = (now - min(started)).total_seconds() + CLOCK_SLACK_SECONDS
    return max(float(older_than), running)


def _counted_bytes(removed: list[RemovedItem]) -> int:
    """What the quota counted of the removed: listed keys, not the backend's own leftovers."""
    return sum(item.size for item in removed if item.kind in (WEIGHT_FILE, CATALOG_FILE, VIEW_FILE))
