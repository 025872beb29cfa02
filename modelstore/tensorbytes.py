"""Where each tensor of a stored version lies in its weight files, and its bytes as a stream.

A group's files hold the group's tensors back to back, in manifest order (§2.3), so a
tensor's place is the sum of the sizes before it. String tensors have no fixed size: a tensor
after one is found from the group's end when only fixed-size tensors follow it, and otherwise
by walking the strings' length prefixes (their bytes are streamed past, never held).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from modelshelf.modelstore import rawjson
from modelshelf.modelstore.errors import InvalidModelError, TensorNotFoundError
from modelshelf.modelstore.inspection import WeightRow, weight_rows
from modelshelf.modelstore.manifest import normalize_weight_path
from modelshelf.modelstore.store import ModelStore
from modelshelf.modelstore.weights import STRING_LENGTH_BYTES


@dataclass(frozen=True, slots=True)
class GroupFile:
    """One weight file of a group: its stored path and size."""

    path: str
    size: int


@dataclass(frozen=True, slots=True)
class Extent:
    """A tensor's bytes ``[start, end)`` in the concatenation of its group's files."""

    start: int
    end: int

    @property
    def size(self) -> int:
        return self.end - self.start


class WeightLayout:
    """The weight specs of one version and where their bytes are; ``open`` builds one."""

    def __init__(
        self,
        store: ModelStore,
        model_name: str,
        version_id: str,
        groups: list[list[WeightRow]],
        files: list[list[GroupFile]],
        manifest: list[dict[str, Any]] | None = None,
    ) -> None:
        self.manifest = manifest or []  # weightsManifest as saved
        self._store = store
        self._model = model_name
        self._version = version_id
        self._groups = groups
        self._files = files
        self._extents: dict[tuple[int, int], Extent] = {}
        self._walked: dict[int, tuple[int, int]] = {}  # group -> (next index, its start)
        self._sizes = [_group_sizes(rows) for rows in groups]
        # JS keeps the last of two specs with one name (§2.2).
        self._places = {
            row.name: (group, index)
            for group, rows in enumerate(groups)
            for index, row in enumerate(rows)
        }

    @classmethod
    async def open(
        cls, store: ModelStore, model_name: str, version_id: str, model_json: bytes | None = None
    ) -> WeightLayout:
        """Read a version's manifest (from ``model_json`` when the caller has it already) and
        file sizes; raises Model/VersionNotFoundError."""
        if model_json is None:
            model_json = await store.original_model_json(model_name, version_id)
        manifest = await asyncio.to_thread(_manifest, model_json)
        stored = {
            item.path: item.size for item in (await store.version(model_name, version_id)).files
        }
        groups: list[list[WeightRow]] = [[] for _ in manifest]
        for row in weight_rows(manifest):
            groups[row.group].append(row)
        files = [
            [GroupFile(path, stored.get(path, 0)) for path in _paths(group)] for group in manifest
        ]
        return cls(store, model_name, version_id, groups, files, manifest)

    @property
    def rows(self) -> list[WeightRow]:
        """Every weight spec by name, in stream order (the last of a repeated name)."""
        return [self._groups[group][index] for group, index in self._places.values()]

    @property
    def groups(self) -> list[list[WeightRow]]:
        """The weight specs of each group in manifest order, repeated names included."""
        return self._groups

    def group_files(self, group: int) -> list[GroupFile]:
        return self._files[group]

    def find(self, name: str) -> WeightRow:
        """The weight spec named ``name``; raises TensorNotFoundError."""
        place = self._places.get(name)
        if place is None:
            raise TensorNotFoundError(
                f"version {self._version} of {self._store.url(self._model)!r} has no weight "
                f"{name!r}; its weights are listed in model.json's weightsManifest"
            )
        return self._groups[place[0]][place[1]]

    async def extent(self, name: str) -> Extent:
        """Where the bytes of weight ``name`` lie in its group's files."""
        group, index = self._places[self.find(name).name]
        known = self._extents.get((group, index)) or self._cheap_extent(group, index)
        if known is not None:
            return known
        return await self._walk_to(group, index)

    def chunks(self, name: str, extent: Extent, size: int) -> AsyncIterator[bytes]:
        """The bytes of ``extent`` in pieces of exactly ``size`` (the last one shorter)."""
        group, _index = self._places[name]
        return exact_chunks(self.group_bytes(group, extent.start, extent.end), size)

    def _cheap_extent(self, group: int, index: int) -> Extent | None:
        """The extent from sizes alone, when no string of unknown size is in the way."""
        sums, first_string, last_string = self._sizes[group]
        if index <= first_string:
            start = sums[index]
        elif index > last_string:
            start = self.group_size(group) - (sums[-1] - sums[index])
        else:
            return None
        own = self._groups[group][index].stored_bytes
        if own is not None:
            return Extent(start, start + own)
        if _elements(self._groups[group][index]) == 0:
            return Extent(start, start)
        if index == last_string:
            return Extent(start, self.group_size(group) - (sums[-1] - sums[index + 1]))
        return None

    async def _walk_to(self, group: int, index: int) -> Extent:
        """Walk forward through strings from where the last walk stopped to ``index``."""
        sums, first_string, _last = self._sizes[group]
        current, position = self._walked.get(group, (first_string, sums[first_string]))
        while current <= index:
            extent = await self._extent_from(group, current, position)
            self._extents[(group, current)] = extent
            current, position = current + 1, extent.end
        self._walked[group] = (current, position)
        return self._extents[(group, index)]

    async def _extent_from(self, group: int, index: int, start: int) -> Extent:
        row = self._groups[group][index]
        if row.stored_bytes is not None:
            return Extent(start, start + row.stored_bytes)
        reader = ByteReader(self.group_bytes(group, start, None))
        try:
            for _element in range(_elements(row)):
                prefix = await reader.read(STRING_LENGTH_BYTES)
                await reader.skip(int.from_bytes(prefix, "little"))
        finally:
            await reader.aclose()
        return Extent(start, start + reader.consumed)

    def group_size(self, group: int) -> int:
        return sum(item.size for item in self._files[group])

    async def group_bytes(self, group: int, start: int, end: int | None) -> AsyncIterator[bytes]:
        """Bytes ``[start, end)`` of the group's files read as one, by ranged reads."""
        file_start = 0
        for item in self._files[group]:
            file_end = file_start + item.size
            low = max(start, file_start)
            high = file_end if end is None else min(file_end, end)
            if low < high:
                async for chunk in self._file_bytes(item.path, low - file_start, high - file_start):
                    yield chunk
            file_start = file_end

    async def _file_bytes(self, path: str, start: int, end: int) -> AsyncIterator[bytes]:
        _stored, stream = await self._store.open_weight_file(
            self._model, self._version, path, start=start, end=end
        )
        try:
            async for chunk in stream:
                yield chunk
        finally:
            await stream.aclose()


class ByteReader:
    """Reads and skips exact byte counts from a stream of chunks; ``consumed`` counts them."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks
        self._chunk = b""
        self._position = 0  # into _chunk: slicing the rest off each time would copy it
        self.consumed = 0

    async def read(self, count: int) -> bytes:
        parts = []
        while count > 0:
            part = await self._take(count)
            parts.append(part)
            count -= len(part)
        return b"".join(parts)

    async def skip(self, count: int) -> None:
        while count > 0:
            count -= len(await self._take(count))

    async def aclose(self) -> None:
        aclose = getattr(self._chunks, "aclose", None)
        if aclose is not None:
            await aclose()

    async def _take(self, most: int) -> bytes:
        """Up to ``most`` bytes of the current chunk, reading the next one when it is used up."""
        while self._position == len(self._chunk):
            try:
                self._chunk, self._position = await anext(self._chunks), 0
            except StopAsyncIteration:
                raise InvalidModelError("a string weight runs past the end of its files") from None
        taken = self._chunk[self._position : self._position + most]
        self._position += len(taken)
        self.consumed += len(taken)
        return taken


async def exact_chunks(chunks: AsyncIterator[bytes], size: int) -> AsyncIterator[bytes]:
    """Re-cut a byte stream into pieces of ``size`` bytes; the last may be shorter."""
    pending = bytearray()
    try:
        async for chunk in chunks:
            pending += chunk
            while len(pending) >= size:
                yield bytes(pending[:size])
                del pending[:size]
        if pending:
            yield bytes(pending)
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()


def _manifest(model_json: bytes) -> list[dict[str, Any]]:
    """Only weightsManifest is decoded where the document splits (see rawjson)."""
    try:
        raw = rawjson.members(model_json).get("weightsManifest")
        manifest = rawjson.decode(raw) if raw is not None else []
    except rawjson.UnsplittableJsonError:
        manifest = json.loads(model_json).get("weightsManifest")
    return manifest if isinstance(manifest, list) else []


def _paths(group: dict[str, Any]) -> list[str]:
    return [normalize_weight_path(path) for path in group.get("paths") or []]


def _group_sizes(rows: list[WeightRow]) -> tuple[list[int], int, int]:
    """Running sums of fixed sizes (strings as 0), and the first and last string's index
    (``len(rows)`` and -1 when there is none)."""
    sums = [0]
    for row in rows:
        sums.append(sums[-1] + (row.stored_bytes or 0))
    strings = [index for index, row in enumerate(rows) if row.stored_bytes is None]
    return sums, strings[0] if strings else len(rows), strings[-1] if strings else -1


def _elements(row: WeightRow) -> int:
    count = 1
    for dimension in row.shape:
        count *= dimension
    return count
