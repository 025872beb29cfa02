"""Lighter forms of a stored version, made on request: quantized and resharded views (issue 14).

``model.json?quantize=float16&shard_bytes=4194304`` serves a *view* of a version: the same
model, its float32 weights quantized as tfjs-converter quantizes them (modelstore.quantizing)
and its weight stream cut into shards as the converter cuts them
(``groupG-shardIofN.bin``, per group, in manifest order). A view is derived once per
(version, options), tensor by tensor from the version's weight files, and stored with it:

    NAME/~v/VID/~view/OPTS/FILE     its weight files, immutable like the version's own
    NAME/~v/VID/~view/OPTS.view     its record and model.json; writing it commits the view

So removing the version removes its views, the quota counts them, and a view that fails
midway is deleted before anyone can load it. Concurrent first requests in one process wait
for the one derivation; replicas that race derive the same bytes under the same keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from modelshelf.backends.errors import NotFoundError, StorageError
from modelshelf.backends.ops import delete_if_present, iter_keys, put_bytes
from modelshelf.backends.protocol import STREAM_CHUNK_BYTES, ObjectStream
from modelshelf.modelstore import layout, rawjson
from modelshelf.modelstore.errors import InvalidViewError, WeightFileNotFoundError
from modelshelf.modelstore.inspection import WeightRow
from modelshelf.modelstore.jsjson import compact_json
from modelshelf.modelstore.quantizing import (
    QUANTIZE_DTYPES,
    Extremes,
    Quantization,
    QuantizeDtype,
    float32_values,
    quantization_for,
)
from modelshelf.modelstore.quota import Reservation
from modelshelf.modelstore.records import (
    DamagedRecordError,
    FileRecord,
    FramedPayload,
    open_framed_as,
)
from modelshelf.modelstore.served import ServedModelJson, held_stream
from modelshelf.modelstore.store import ModelStore
from modelshelf.modelstore.tensorbytes import ByteReader, WeightLayout
from modelshelf.modelstore.version_cache import keeps_served
from modelshelf.modelstore.version_ids import iso_date
from modelshelf.modelstore.weights import STRING_LENGTH_BYTES
from modelshelf.schemas.versions import StoredFile

MIB = 1 << 20
DEFAULT_SHARD_BYTES = 4 * MIB  # the converter's default, --weight_shard_size_bytes
MIN_SHARD_BYTES = 1 * MIB
MAX_SHARD_BYTES = 64 * MIB
CHUNK_BYTES = 1 * MIB  # of a tensor's values converted at once: a multiple of 4
HELD_VIEWS = 256  # per store, and at most HELD_BYTES of their model.json
HELD_BYTES = 32 << 20
_KEEP = "keep"  # the segment's word for "no quantization"
logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ViewOptions:
    """What a view changes: the quantization of float32 weights, and the shard size."""

    quantize: QuantizeDtype | None
    shard_bytes: int

    @classmethod
    def parse(cls, quantize: str | None, shard_bytes: int | None) -> ViewOptions | None:
        """The options of a request, None for the version itself; raises InvalidViewError."""
        if quantize is None and shard_bytes is None:
            return None
        if quantize is not None and quantize not in QUANTIZE_DTYPES:
            raise InvalidViewError(
                f"quantize={quantize!r} is not a quantization; use one of "
                f"{', '.join(QUANTIZE_DTYPES)}"
            )
        if shard_bytes is not None and not MIN_SHARD_BYTES <= shard_bytes <= MAX_SHARD_BYTES:
            raise InvalidViewError(
                f"shard_bytes={shard_bytes} is out of range; use a byte count from "
                f"{MIN_SHARD_BYTES} (1 MiB) to {MAX_SHARD_BYTES} (64 MiB), e.g. 4194304"
            )
        dtype = next((known for known in QUANTIZE_DTYPES if known == quantize), None)
        return cls(dtype, DEFAULT_SHARD_BYTES if shard_bytes is None else shard_bytes)

    @classmethod
    def from_segment(cls, segment: str) -> ViewOptions | None:
        """``float16-4194304`` -> its options; None for anything else (no such file)."""
        quantize, _, size = segment.partition("-")
        if not size.isdigit() or size != str(int(size)):
            return None
        try:
            return cls.parse(None if quantize == _KEEP else quantize, int(size))
        except InvalidViewError:
            return None

    @property
    def segment(self) -> str:
        """The options as one path segment: ``float16-4194304``, ``keep-1048576``."""
        return f"{self.quantize or _KEEP}-{self.shard_bytes}"

    @property
    def query(self) -> dict[str, str]:
        """The options as the query parameters that ask for them."""
        wanted = {"quantize": self.quantize} if self.quantize else {}
        return {**wanted, "shard_bytes": str(self.shard_bytes)}


class ViewRecord(BaseModel):
    """A committed view: the first line of its ``.view`` object; its model.json follows."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: Literal[1] = 1
    quantize: QuantizeDtype | None
    shard_bytes: int
    files: list[FileRecord]  # paths as URLs name them under ~v/VID/: ~view/OPTS/FILE
    weight_bytes: int
    served_bytes: int
    quantized: int  # float32 tensors quantized
    kept_float32: list[str]  # float32 tensors left as they are (modelstore.quantizing)

    def line(self) -> bytes:
        return self.model_dump_json().encode() + b"\n"


@dataclass(frozen=True, slots=True)
class View:
    """A committed view of one version; ``served`` is its model.json when held in memory."""

    key: str
    version_id: str
    options: ViewOptions
    record: ViewRecord
    served: bytes | None

    def file(self, path: str) -> FileRecord | None:
        return next((item for item in self.record.files if item.path == path), None)


@dataclass(frozen=True, slots=True)
class ViewSize:
    """A stored view and the bytes of its weight files (the console lists them)."""

    options: ViewOptions
    weight_bytes: int


class Views:
    """The views of one store's versions: served from memory or the store, or derived once."""

    def __init__(self, store: ModelStore) -> None:
        self.store = store
        self._held: OrderedDict[tuple[str, str, str], View] = OrderedDict()
        self._deriving: dict[tuple[str, str, str], asyncio.Task[View]] = {}

    async def model_json(
        self, model_name: str, version_id: str, options: ViewOptions
    ) -> tuple[View, ObjectStream]:
        """A version's view with these options (derived now if it is not stored yet), and
        the view's model.json. Raises VersionNotFoundError, QuotaExceededError, StorageError.
        """
        view = await self.view(model_name, version_id, options)
        if view.served is not None:
            return view, held_stream(view.key, view.served)
        stream = await self.store.backend.get(view.key)
        _record, payload = await open_framed_as(stream, _parse_record)
        return view, payload.stream(view.record.served_bytes)

    async def view(self, model_name: str, version_id: str, options: ViewOptions) -> View:
        """The view, from memory, from the store, or derived: once, however many ask."""
        place = (model_name, version_id, options.segment)
        held = self._held.get(place)
        if held is not None:
            self._held.move_to_end(place)
            return held
        task = self._deriving.get(place)
        if task is None:
            task = asyncio.create_task(self._stored_or_derived(model_name, version_id, options))
            self._deriving[place] = task
            task.add_done_callback(lambda _done: self._deriving.pop(place, None))
        # Shielded: a client that goes away does not stop the view the others wait for.
        view = await asyncio.shield(task)
        self._hold(place, view)
        return view

    async def weight_file(self, model_name: str, version_id: str, path: str) -> StoredFile:
        """A weight file of a version or of one of its views, as ``path`` names it under
        ``~v/VID/``; the version is confirmed to exist. Raises WeightFileNotFoundError."""
        found = _view_path(path)
        if found is None:
            return await self.store.weight_file(model_name, version_id, path)
        options, _file_name = found
        await self.store.version(model_name, version_id)
        stored = (await self.view(model_name, version_id, options)).file(path)
        if stored is None:
            raise WeightFileNotFoundError(
                f"the {options.segment} view of version {version_id} of "
                f"{self.store.url(model_name)!r} has no weight file {path!r}"
            )
        return StoredFile(**stored.model_dump())

    async def open_weight_file(
        self, model_name: str, version_id: str, path: str, *, start: int = 0, end: int | None = None
    ) -> tuple[StoredFile, ObjectStream]:
        """Open a weight file of a version or of a view, bytes ``[start, end)``."""
        if _view_path(path) is None:
            return await self.store.open_weight_file(
                model_name, version_id, path, start=start, end=end
            )
        stored = await self.weight_file(model_name, version_id, path)
        key = layout.weight_file_key(model_name, version_id, path)
        try:
            return stored, await self.store.backend.get(key, start=start, end=end)
        except NotFoundError:
            self._forget(model_name, version_id)
            raise WeightFileNotFoundError(
                f"weight file {path!r} of version {version_id} of {self.store.url(model_name)!r}"
                f" is gone (the version was removed, or the view damaged); load model.json again"
            ) from None

    async def sizes(self, model_name: str, version_id: str) -> list[ViewSize]:
        """The views stored for a version, with their weight bytes: one listing."""
        folder = layout.views_folder(model_name, version_id)
        committed: set[str] = set()
        totals: dict[str, int] = {}
        async for info in iter_keys(self.store.backend, folder):
            rest = info.key[len(folder) :]
            if rest.endswith(layout.VIEW_SUFFIX) and "/" not in rest:
                committed.add(rest[: -len(layout.VIEW_SUFFIX)])
            else:
                segment = rest.partition("/")[0]
                totals[segment] = totals.get(segment, 0) + info.size
        found = []
        for segment in sorted(committed):
            options = ViewOptions.from_segment(segment)
            if options is not None:
                found.append(ViewSize(options, totals.get(segment, 0)))
        return found

    def _hold(self, place: tuple[str, str, str], view: View) -> None:
        self._held[place] = view
        self._held.move_to_end(place)
        while len(self._held) > HELD_VIEWS or self._held_bytes() > HELD_BYTES:
            self._held.popitem(last=False)

    def _held_bytes(self) -> int:
        return sum(len(view.served or b"") for view in self._held.values())

    def _forget(self, model_name: str, version_id: str) -> None:
        for place in [p for p in self._held if p[:2] == (model_name, version_id)]:
            del self._held[place]

    async def _stored_or_derived(
        self, model_name: str, version_id: str, options: ViewOptions
    ) -> View:
        key = layout.view_record_key(model_name, version_id, options.segment)
        try:
            stream = await self.store.backend.get(key)
        except NotFoundError:
            return await _Derivation(self.store, model_name, version_id, options).run()
        record, payload = await open_framed_as(stream, _parse_record)
        return await _held_view(key, version_id, options, record, payload)


class _Derivation:
    """Deriving one view: plan (each float32 tensor's range), then write shards, then commit."""

    def __init__(
        self, store: ModelStore, model_name: str, version_id: str, options: ViewOptions
    ) -> None:
        self.store = store
        self.model_name = model_name
        self.version_id = version_id
        self.options = options
        self.key = layout.view_record_key(model_name, version_id, options.segment)
        self._written: list[str] = []

    async def run(self) -> View:
        original = await self.store.original_model_json(self.model_name, self.version_id)
        weights = await WeightLayout.open(self.store, self.model_name, self.version_id, original)
        plans = await self._plan(weights)
        sizes = [
            weights.group_size(group) - _saved_bytes(rows, plans[group])
            for group, rows in enumerate(weights.groups)
        ]
        reservation = await self.store.reserve(sum(sizes) + len(original) + 4096)
        marker = layout.view_marker_key(self.model_name, self.version_id, self.options.segment)
        try:
            # Before any shard: gc removes a view whose derivation was killed once this is old.
            self._written.append(marker)
            await put_bytes(self.store.backend, marker, iso_date(datetime.now(UTC)).encode())
            files: list[list[FileRecord]] = []
            for group, rows in enumerate(weights.groups):
                files.append(
                    await self._write_group(weights, group, rows, plans[group], sizes, reservation)
                )
            served = await asyncio.to_thread(
                _view_model_json, original, self._manifest(weights, plans, files)
            )
            record = ViewRecord(
                quantize=self.options.quantize,
                shard_bytes=self.options.shard_bytes,
                files=[item for group_files in files for item in group_files],
                weight_bytes=sum(sizes),
                served_bytes=served.size,
                quantized=sum(plan is not None for group in plans for plan in group),
                kept_float32=_kept(weights.groups, plans, self.options),
            )
            line = record.line()
            reservation.spend(len(line) + served.size)
            info = await self.store.backend.put(self.key, _framed(line, served))
            reservation.stored(info.size)
            with contextlib.suppress(StorageError):  # committed: gc skips a view with a record
                await delete_if_present(self.store.backend, marker)
        except BaseException:
            await asyncio.shield(self._discard())
            raise
        finally:
            reservation.release()
        held = b"".join(served.chunks()) if keeps_served(served.size) else None
        return View(self.key, self.version_id, self.options, record, held)

    async def _plan(self, weights: WeightLayout) -> list[list[Quantization | None]]:
        """Each tensor's quantization (None: its bytes pass through), from one read of the
        float32 tensors' values."""
        wanted = self.options.quantize
        plans: list[list[Quantization | None]] = []
        for group, rows in enumerate(weights.groups):
            if wanted is None or not any(_quantizable(row) for row in rows):
                plans.append([None] * len(rows))
                continue
            chosen: list[Quantization | None] = []
            reader = ByteReader(weights.group_bytes(group, 0, None))
            try:
                for row in rows:
                    if not _quantizable(row):
                        await _skip_tensor(reader, row)
                        chosen.append(None)
                        continue
                    extremes = Extremes()
                    async for values in _value_chunks(reader, row):
                        await asyncio.to_thread(extremes.add, float32_values(values))
                    chosen.append(quantization_for(wanted, extremes))
            finally:
                await reader.aclose()
            plans.append(chosen)
        return plans

    async def _write_group(
        self,
        weights: WeightLayout,
        group: int,
        rows: list[WeightRow],
        plans: list[Quantization | None],
        sizes: list[int],
        reservation: Reservation,
    ) -> list[FileRecord]:
        total = sizes[group]
        shard = self.options.shard_bytes
        count = math.ceil(total / shard)
        cutter = _Cutter(self._group_output(weights, group, rows, plans))
        files = []
        try:
            for index in range(count):
                name = f"group{group + 1}-shard{index + 1}of{count}.bin"
                path = layout.view_file_path(self.options.segment, name)
                key = layout.weight_file_key(self.model_name, self.version_id, path)
                digest = hashlib.sha256()
                self._written.append(key)
                wanted = min(shard, total - index * shard)
                reservation.spend(wanted)
                info = await self.store.backend.put(key, cutter.take(wanted, digest))
                reservation.stored(info.size)
                files.append(FileRecord(path=path, size=info.size, sha256=digest.hexdigest()))
        finally:
            await cutter.aclose()
        return files

    async def _group_output(
        self,
        weights: WeightLayout,
        group: int,
        rows: list[WeightRow],
        plans: list[Quantization | None],
    ) -> AsyncIterator[bytes]:
        """The group's bytes as the view stores them: tensor by tensor, in manifest order."""
        reader = ByteReader(weights.group_bytes(group, 0, None))
        try:
            for row, plan in zip(rows, plans, strict=True):
                if plan is None:
                    async for piece in _tensor_bytes(reader, row):
                        yield piece
                    continue
                async for values in _value_chunks(reader, row):
                    yield await asyncio.to_thread(plan.encode, float32_values(values))
        finally:
            await reader.aclose()

    def _manifest(
        self,
        weights: WeightLayout,
        plans: list[list[Quantization | None]],
        files: list[list[FileRecord]],
    ) -> list[dict[str, Any]]:
        prefix = f"{layout.VERSIONS_SEGMENT}/{self.version_id}/"
        manifest = []
        for group, raw_group in enumerate(weights.manifest):
            specs = []
            for spec, plan in zip(raw_group.get("weights") or [], plans[group], strict=True):
                quantized = {"quantization": plan.manifest_entry()} if plan else {}
                specs.append({**spec, **quantized})
            manifest.append(
                {"paths": [prefix + item.path for item in files[group]], "weights": specs}
            )
        return manifest

    async def _discard(self) -> None:
        """Delete what this derivation stored: nothing of a failed view stays."""
        for key in [self.key, *self._written[1:], *self._written[:1]]:  # the marker last
            try:
                await delete_if_present(self.store.backend, key)
            except Exception:  # the failure being reported matters more than its cleanup's
                logger.exception("could not delete %s of a failed view", key)


class _Cutter:
    """Cuts one stream of chunks into consecutive files of given sizes."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks
        self._rest = memoryview(b"")

    async def take(self, count: int, digest: Any) -> AsyncIterator[bytes]:
        while count > 0:
            if not self._rest:
                try:
                    self._rest = memoryview(await anext(self._chunks))
                except StopAsyncIteration:
                    raise InvalidViewError("a weight group ended before its last shard") from None
                continue
            piece = bytes(self._rest[:count])
            self._rest = self._rest[len(piece) :]
            count -= len(piece)
            digest.update(piece)
            yield piece

    async def aclose(self) -> None:
        aclose: Callable[[], Any] | None = getattr(self._chunks, "aclose", None)
        if aclose is not None:
            await aclose()


def _quantizable(row: WeightRow) -> bool:
    return row.dtype == "float32" and row.quantization is None


def _elements(row: WeightRow) -> int:
    return math.prod(row.shape)


async def _value_chunks(reader: ByteReader, row: WeightRow) -> AsyncIterator[bytes]:
    """A float32 tensor's bytes in pieces of at most CHUNK_BYTES, whole elements each."""
    left = _elements(row) * 4
    while left > 0:
        piece = await reader.read(min(left, CHUNK_BYTES))
        left -= len(piece)
        yield piece


async def _tensor_bytes(reader: ByteReader, row: WeightRow) -> AsyncIterator[bytes]:
    """One tensor's stored bytes, as they are; strings walked by their length prefixes."""
    if row.stored_bytes is not None:
        left = row.stored_bytes
        while left > 0:
            piece = await reader.read(min(left, STREAM_CHUNK_BYTES))
            left -= len(piece)
            yield piece
        return
    for _element in range(_elements(row)):
        prefix = await reader.read(STRING_LENGTH_BYTES)
        yield prefix
        left = int.from_bytes(prefix, "little")
        while left > 0:
            piece = await reader.read(min(left, STREAM_CHUNK_BYTES))
            left -= len(piece)
            yield piece


async def _skip_tensor(reader: ByteReader, row: WeightRow) -> None:
    if row.stored_bytes is not None:
        await reader.skip(row.stored_bytes)
        return
    for _element in range(_elements(row)):
        await reader.skip(int.from_bytes(await reader.read(STRING_LENGTH_BYTES), "little"))


def _saved_bytes(rows: list[WeightRow], plans: list[Quantization | None]) -> int:
    """How many bytes quantizing saves in one group."""
    return sum(
        _elements(row) * (4 - plan.code_bytes)
        for row, plan in zip(rows, plans, strict=True)
        if plan is not None
    )


def _kept(
    groups: list[list[WeightRow]], plans: list[list[Quantization | None]], options: ViewOptions
) -> list[str]:
    if options.quantize is None:
        return []
    return [
        row.name
        for rows, chosen in zip(groups, plans, strict=True)
        for row, plan in zip(rows, chosen, strict=True)
        if _quantizable(row) and plan is None and _elements(row) > 0
    ]


def _view_model_json(original: bytes, manifest: list[dict[str, Any]]) -> ServedModelJson:
    """model.json as saved with its weightsManifest replaced; other members kept as bytes."""
    replaced = compact_json(manifest)
    try:
        members = rawjson.members(original)
    except rawjson.UnsplittableJsonError:
        document = json.loads(original)
        document["weightsManifest"] = manifest
        return ServedModelJson([compact_json(document)])
    parts: list[bytes | rawjson.Raw] = [b"{"]
    for index, (key, raw) in enumerate(members.items()):
        parts += [b"," if index else b"", compact_json(key), b":"]
        parts.append(replaced if key == "weightsManifest" else raw)
    parts.append(b"}")
    return ServedModelJson(parts)


def _view_path(path: str) -> tuple[ViewOptions, str] | None:
    """``~view/OPTS/FILE`` -> its options and file name; None for a version's own path."""
    head, _, rest = path.partition("/")
    if head != layout.VIEWS_SEGMENT:
        return None
    segment, _, file_name = rest.partition("/")
    options = ViewOptions.from_segment(segment)
    if options is None or not file_name or "/" in file_name:
        raise WeightFileNotFoundError(f"there is no weight file {path!r}")
    return options, file_name


def _parse_record(line: bytes) -> ViewRecord:
    try:
        return ViewRecord.model_validate_json(line)
    except ValueError:
        raise DamagedRecordError(
            "a view record in this store is damaged; restore the store from a backup, or "
            "remove the version and save it again"
        ) from None


async def _held_view(
    key: str, version_id: str, options: ViewOptions, record: ViewRecord, payload: FramedPayload
) -> View:
    small = keeps_served(record.served_bytes)
    try:
        served = await payload.read(record.served_bytes) if small else None
    finally:
        await payload.aclose()
    return View(key, version_id, options, record, served)


async def _framed(line: bytes, served: ServedModelJson) -> AsyncIterator[bytes]:
    yield line
    for chunk in served.chunks():
        yield chunk
