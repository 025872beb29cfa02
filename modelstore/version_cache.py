"""Committed versions kept in memory, so a load answers from one small read (issue 12, item 2).

A committed version never changes: its record, its ``VersionInfo`` and its served model.json
can be shared by every load for as long as memory allows. What does change is which version
is current, and whether a version still exists; those the store asks the backend on every
load, with one ``head`` call (a stat, a row lookup, an S3 HEAD), and compares the answer
with what it saw last. A save or remove through another process or replica changes the
head's etag, so it is seen by the next load, at once.

Bounded twice: by entries (records of huge models are big) and by bytes (the served
model.json documents held).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from modelshelf.modelstore.records import VersionRecord, to_version_info
from modelshelf.schemas.versions import VersionInfo

MAX_ENTRIES = 4096  # versions per store
MAX_BYTES = 64 << 20  # served model.json and record lines held, per store
MAX_SERVED_BYTES = 1 << 20  # a larger served model.json is streamed from the store each time


def keeps_served(size: int) -> bool:
    """Whether a served model.json of ``size`` bytes is held in memory, or streamed."""
    return size <= MAX_SERVED_BYTES


@dataclass(frozen=True, slots=True)
class CachedVersion:
    """One committed version: what a load answers without reading the version's objects."""

    key: str  # the object the record was read from: a load asks whether it still exists
    record: VersionRecord
    info: VersionInfo
    served: bytes | None  # model.json as served, when at most MAX_SERVED_BYTES
    weight: int  # the bytes this entry counts against MAX_BYTES


@dataclass(frozen=True, slots=True)
class KnownHead:
    """The head object of a model as last read: its etag, and the version it named."""

    etag: str
    version_id: str


class VersionCache:
    """Least recently used versions of one store, and the heads last seen."""

    def __init__(self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._versions: OrderedDict[tuple[str, str], CachedVersion] = OrderedDict()
        self._heads: OrderedDict[str, KnownHead] = OrderedDict()
        self._bytes = 0

    @property
    def bytes_held(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._versions)

    def get(self, model_name: str, version_id: str) -> CachedVersion | None:
        found = self._versions.get((model_name, version_id))
        if found is not None:
            self._versions.move_to_end((model_name, version_id))
        return found

    def remember(
        self, model_name: str, source: str, record: VersionRecord, served: bytes | None = None
    ) -> CachedVersion:
        """Keep ``record``, read from the object ``source``, and its served model.json if
        ``keeps_served``; returns the entry."""
        key = (model_name, record.id)
        known = self._versions.get(key)
        if known is not None and (served is None or known.served is not None):
            self._versions.move_to_end(key)
            return known
        if served is not None and not keeps_served(len(served)):
            served = None
        weight = len(record.line()) + (len(served) if served is not None else 0)
        entry = CachedVersion(source, record, to_version_info(record), served, weight)
        if weight > self.max_bytes:
            return entry  # served once, never held
        self._drop(key)
        self._versions[key] = entry
        self._bytes += weight
        while len(self._versions) > self.max_entries or self._bytes > self.max_bytes:
            self._drop(next(iter(self._versions)))
        return entry

    def forget(self, model_name: str, version_id: str) -> None:
        self._drop((model_name, version_id))

    def head(self, model_name: str) -> KnownHead | None:
        return self._heads.get(model_name)

    def saw_head(self, model_name: str, etag: str, version_id: str) -> None:
        self._heads[model_name] = KnownHead(etag, version_id)
        self._heads.move_to_end(model_name)
        while len(self._heads) > self.max_entries:
            self._heads.popitem(last=False)

    def forget_head(self, model_name: str) -> None:
        self._heads.pop(model_name, None)

    def _drop(self, key: tuple[str, str]) -> None:
        entry = self._versions.pop(key, None)
        if entry is not None:
            self._bytes -= entry.weight
