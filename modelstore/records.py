"""What the model layer stores about a version, apart from the wire's ``VersionInfo``.

A record has its own schema number: the API may rename or add fields without a data
migration, because ``to_version_info`` is the one place that maps one to the other.

    schema 1  ``~models/NAME/~VID/record.json``: the wire VersionInfo itself (release 0.1.0)
    schema 2  the first line of ``~models/NAME/~VID.version`` and of ``~heads/NAME/~head``

Objects of schema 2 are framed: one line of record JSON, then the payloads it sizes
(``served_bytes`` of model.json as served, then, in a version object, ``model_json.size``
bytes of model.json as saved). One object is then one read, and one put.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from modelshelf.backends.protocol import ObjectInfo, ObjectStream
from modelshelf.modelstore.errors import ModelError
from modelshelf.schemas.artifacts import ModelArtifactsInfo
from modelshelf.schemas.errors import ErrorCode
from modelshelf.schemas.versions import StoredFile, VersionInfo

SCHEMA: Literal[2] = 2
R = TypeVar("R")
MAX_RECORD_LINE_BYTES = 64 << 20  # a record lists every weight file; far above any real one


class DamagedRecordError(ModelError):
    """A stored record cannot be read: the store was changed by something else."""

    code = ErrorCode.STORAGE_ERROR


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class FileRecord(_Record):
    path: str
    size: int
    sha256: str


class ArtifactsRecord(_Record):
    topology_bytes: int
    weight_specs_bytes: int
    weight_data_bytes: int


class VersionRecord(_Record):
    """One committed version, as the store keeps it (schema 2)."""

    schema_version: Literal[2] = Field(default=SCHEMA, alias="schema")
    id: str
    saved_at: str = Field(description="ISO 8601 with milliseconds, as TF.js writes dateSaved")
    artifacts: ArtifactsRecord
    model_json: FileRecord
    files: list[FileRecord]
    served_bytes: int

    def line(self) -> bytes:
        """The record as the first line of a framed object."""
        return self.model_dump_json(by_alias=True).encode() + b"\n"


def to_version_info(record: VersionRecord) -> VersionInfo:
    """The one mapping from a stored record to the wire."""
    return VersionInfo(
        id=record.id,
        dateSaved=record.saved_at,
        modelArtifactsInfo=ModelArtifactsInfo(
            dateSaved=record.saved_at,
            modelTopologyType="JSON",
            modelTopologyBytes=record.artifacts.topology_bytes,
            weightSpecsBytes=record.artifacts.weight_specs_bytes,
            weightDataBytes=record.artifacts.weight_data_bytes,
        ),
        modelJson=StoredFile(**record.model_json.model_dump()),
        files=[StoredFile(**item.model_dump()) for item in record.files],
    )


def from_schema_1(raw: bytes, served_bytes: int) -> VersionRecord:
    """A release-0.1.0 ``record.json`` (the wire VersionInfo of that release)."""
    legacy = VersionInfo.model_validate_json(raw)
    info = legacy.modelArtifactsInfo
    return VersionRecord(
        id=legacy.id,
        saved_at=legacy.dateSaved,
        artifacts=ArtifactsRecord(
            topology_bytes=info.modelTopologyBytes,
            weight_specs_bytes=info.weightSpecsBytes,
            weight_data_bytes=info.weightDataBytes,
        ),
        model_json=FileRecord(**legacy.modelJson.model_dump()),
        files=[FileRecord(**item.model_dump()) for item in legacy.files],
        served_bytes=served_bytes,
    )


def parse_line(line: bytes) -> VersionRecord:
    try:
        return VersionRecord.model_validate_json(line)
    except ValueError:
        raise DamagedRecordError(
            "a version record in this store is damaged or of an unknown schema; restore the "
            "store from a backup, or remove the version"
        ) from None


class FramedPayload:
    """What follows the record line of a framed object, read piece by piece.

    Holds at most one chunk of the backend's stream beyond what was asked for.
    """

    def __init__(self, stream: ObjectStream, pending: bytes = b"") -> None:
        self._stream = stream
        self._pending = pending

    async def read(self, size: int) -> bytes:
        """The next ``size`` bytes (fewer only if the object ends first)."""
        parts = []
        async for chunk in self._take(size):
            parts.append(chunk)
        return b"".join(parts)

    def stream(self, size: int) -> ObjectStream:
        """The next ``size`` bytes as a stream; closing it closes the object."""
        info = ObjectInfo(self._stream.info.key, size, self._stream.info.etag)
        return ObjectStream(info, self._take(size), release=self._stream.aclose)

    async def _take(self, size: int) -> AsyncIterator[bytes]:
        left = size
        while left > 0:
            if not self._pending:
                try:
                    self._pending = await anext(self._stream.chunks)
                except StopAsyncIteration:
                    return
                continue
            piece, self._pending = self._pending[:left], self._pending[left:]
            left -= len(piece)
            yield piece

    async def aclose(self) -> None:
        await self._stream.aclose()


async def open_framed(stream: ObjectStream) -> tuple[VersionRecord, FramedPayload]:
    """Read a framed version object's record line; the payload follows."""
    return await open_framed_as(stream, parse_line)


async def open_framed_as(
    stream: ObjectStream, parse: Callable[[bytes], R]
) -> tuple[R, FramedPayload]:
    """Read a framed object's record line with ``parse``; the payload follows. Closes the
    stream on error."""
    head = bytearray()
    try:
        async for chunk in stream.chunks:
            head += chunk
            end = head.find(b"\n")
            if end >= 0:
                return parse(bytes(head[:end])), FramedPayload(stream, bytes(head[end + 1 :]))
            if len(head) > MAX_RECORD_LINE_BYTES:
                break
        raise DamagedRecordError(
            "a framed version object in this store has no record line; restore the store "
            "from a backup, or remove the version"
        )
    except BaseException:
        await stream.aclose()
        raise
