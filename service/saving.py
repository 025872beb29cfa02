"""Turning a save request into model.json plus weight files, streaming (protocol doc §4, §12).

Accepted bodies:
- ``multipart/form-data`` as ``tf.io.http`` sends it: a ``model.json`` part, then one
  ``model.weights.bin`` part (or one part per manifest path, browserFiles-style). A body
  whose Content-Type lost its boundary is sniffed from its first line (§12.10).
- ``application/json``: ModelArtifacts with base64 ``weightData``, for simple clients.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import AsyncIterator
from dataclasses import dataclass

from pydantic import ValidationError
from starlette.requests import Request

from modelshelf.modelstore import WeightUpload
from modelshelf.modelstore.jsjson import compact_json
from modelshelf.schemas.artifacts import ModelArtifacts
from modelshelf.schemas.errors import ErrorCode
from modelshelf.schemas.modeljson import HTTP_WEIGHTS_PATH, model_json_for
from modelshelf.service.errors import HttpError
from modelshelf.service.multipart import MultipartReader, boundary_from_content_type, sniff_boundary

MODEL_JSON_PART = "model.json"


@dataclass(slots=True)
class SaveUpload:
    """A save request, decoded: model.json bytes and the weight files still to stream."""

    model_json: bytes
    weight_files: AsyncIterator[WeightUpload]
    # The body's Content-Length bounds the model's bytes for a multipart body; base64 JSON is
    # a third larger than the model it carries, so it bounds nothing useful.
    expected_bytes: int | None = None


class _JsonUpload(SaveUpload):
    """A base64 JSON save, decoded in memory."""


class BodyLimit:
    """Counts body bytes as they stream and refuses past ``limit`` (413)."""

    def __init__(self, stream: AsyncIterator[bytes], limit: int) -> None:
        self._stream = stream
        self.limit = limit
        self.received = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            self.received += len(chunk)
            if self.received > self.limit:
                raise too_large(self.limit)
            yield chunk


def too_large(limit: int) -> HttpError:
    return HttpError(
        ErrorCode.PAYLOAD_TOO_LARGE,
        f"the request body is over this server's limit of {limit} bytes "
        f"(setting MODELSHELF_MAX_BODY_BYTES)",
    )


async def read_save_request(
    request: Request, body: AsyncIterator[bytes], json_limit: int, model_json_limit: int
) -> SaveUpload:
    """Decode the save body by its Content-Type; raises HttpError with what to fix."""
    upload = await _decode_body(request, body, json_limit, model_json_limit)
    length = request.headers.get("content-length", "")
    if length.isdigit() and not isinstance(upload, _JsonUpload):
        upload.expected_bytes = int(length)
    return upload


async def _decode_body(
    request: Request, body: AsyncIterator[bytes], json_limit: int, model_json_limit: int
) -> SaveUpload:
    content_type = request.headers.get("content-type", "")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == "multipart/form-data":
        boundary = boundary_from_content_type(content_type)
        if boundary is None:
            boundary, body = await sniff_boundary(body)
        return await _multipart_upload(body, boundary, model_json_limit)
    if media_type in ("application/json", ""):
        head, body = await _peek(body)
        if not head:
            raise HttpError(
                ErrorCode.INVALID_MODEL,
                "the body is empty; send multipart/form-data (what tf.io.http sends) or "
                "application/json ModelArtifacts",
            )
        if head.startswith(b"--"):  # multipart labelled as JSON: requestInit overrode it
            boundary, body = await sniff_boundary(body)
            return await _multipart_upload(body, boundary, model_json_limit)
        return await _json_upload(body, json_limit)
    raise HttpError(
        ErrorCode.UNSUPPORTED_MEDIA_TYPE,
        f"cannot save a {media_type!r} body; send multipart/form-data (what tf.io.http sends) "
        f"or application/json ModelArtifacts with base64 weightData",
    )


async def _peek(body: AsyncIterator[bytes]) -> tuple[bytes, AsyncIterator[bytes]]:
    first = b""
    async for chunk in body:
        first = chunk
        if first:
            break

    async def replay() -> AsyncIterator[bytes]:
        yield first
        async for chunk in body:
            yield chunk

    return first, replay()


async def _multipart_upload(
    body: AsyncIterator[bytes], boundary: bytes, model_json_limit: int
) -> SaveUpload:
    reader = MultipartReader(body, boundary)
    first = await reader.next_part()
    if first is None or first.name != MODEL_JSON_PART:
        found = "no parts" if first is None else f"a part named {first.name!r}"
        raise HttpError(
            ErrorCode.INVALID_MODEL,
            f"the body's first part must be named 'model.json' (found {found}); "
            f"send model.json first, then the weight files",
        )
    model_json = await reader.read_part(model_json_limit, "the model.json part")
    return SaveUpload(model_json, _weight_parts(reader))


async def _weight_parts(reader: MultipartReader) -> AsyncIterator[WeightUpload]:
    while (part := await reader.next_part()) is not None:
        if part.name == MODEL_JSON_PART:
            raise HttpError(ErrorCode.INVALID_MODEL, "the body has more than one 'model.json' part")
        path = part.filename or part.name
        if not path:
            raise HttpError(
                ErrorCode.BAD_MULTIPART, "a weight part has neither a name nor a filename; name it"
            )
        yield WeightUpload(path, reader.part_body())


async def _json_upload(body: AsyncIterator[bytes], limit: int) -> SaveUpload:
    raw = bytearray()
    async for chunk in body:
        raw += chunk
        if len(raw) > limit:
            raise HttpError(
                ErrorCode.PAYLOAD_TOO_LARGE,
                f"application/json saves are limited to {limit} bytes; send large models as "
                f"multipart/form-data, which streams",
            )
    artifacts = await asyncio.to_thread(_parse_artifacts, raw)
    weights = await asyncio.to_thread(_decode_weight_data, artifacts.weightData)
    fields = artifacts.model_dump(exclude_none=True)
    specs = artifacts.weightSpecs
    spec_dicts = None if specs is None else [spec.model_dump(exclude_none=True) for spec in specs]
    model_json = compact_json(model_json_for(fields, spec_dicts))
    return _JsonUpload(model_json, _single_file(weights))


def _parse_artifacts(raw: bytes | bytearray) -> ModelArtifacts:
    try:
        return ModelArtifacts.model_validate_json(raw)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in item['loc']) or 'body'}: {item['msg']}"
            for item in error.errors()[:5]
        )
        raise HttpError(
            ErrorCode.INVALID_MODEL, f"the body is not valid ModelArtifacts JSON: {problems}"
        ) from None


def _decode_weight_data(weight_data: str | None) -> bytes:
    if weight_data is None:
        return b""
    try:
        return base64.b64decode(weight_data, validate=True)
    except (binascii.Error, ValueError):
        raise HttpError(
            ErrorCode.INVALID_MODEL,
            "weightData must be standard base64 (A-Z, a-z, 0-9, +, /, = padding)",
        ) from None


async def _single_file(data: bytes) -> AsyncIterator[WeightUpload]:
    async def chunks() -> AsyncIterator[bytes]:
        yield data

    yield WeightUpload(HTTP_WEIGHTS_PATH, chunks())
