"""Save, load, inspect, list and remove models: the TF.js-facing routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from modelshelf.access import Action, Grant
from modelshelf.modelstore import ModelStore, ObjectStream, ViewOptions
from modelshelf.modelstore.errors import InvalidViewError
from modelshelf.modelstore.exports import downloads_model_json, downloads_prefix, joined_weights
from modelshelf.modelstore.quantizing import QUANTIZE_DTYPES
from modelshelf.modelstore.views import MAX_SHARD_BYTES, MIN_SHARD_BYTES
from modelshelf.schemas.artifacts import ModelJSON, SaveResult
from modelshelf.schemas.errors import ErrorCode
from modelshelf.schemas.versions import ModelInfo, ModelList, VersionInfo
from modelshelf.service.auth import GrantDep, LoadGrantDep
from modelshelf.service.dependencies import SettingsDep, StoreDep, ViewsDep, model_base_url
from modelshelf.service.errors import error_responses
from modelshelf.service.preconditions import precondition_parameters, preconditions
from modelshelf.service.ranges import requested_range
from modelshelf.service.routing import ModelNameConvertor  # noqa: F401  (registers 'modelname')
from modelshelf.service.saving import BodyLimit, read_save_request, too_large
from modelshelf.service.settings import Settings
from modelshelf.service.zipstream import ZipArchive, ZipEntry

router = APIRouter(prefix="/v1/models", tags=["models"])

MODEL_PATH = "/{store}/{name:modelname}"
IMMUTABLE = "public, max-age=31536000, immutable"
WHOLE_BODY_BYTES = 256 << 10  # bodies up to this are read, then sent in one piece
VersionQuery = Annotated[
    str | None, Query(description="A version id or an alias; the current version if absent")
]
QuantizeQuery = Annotated[
    str | None,
    Query(
        description="Serve a view with float32 weights quantized as tfjs-converter does",
        json_schema_extra={"enum": list(QUANTIZE_DTYPES)},
    ),
]
ShardBytesQuery = Annotated[
    int | None,
    Query(
        description="Serve a view cut into weight files of this many bytes (4194304 by "
        "default when quantize is given)",
        json_schema_extra={"minimum": MIN_SHARD_BYTES, "maximum": MAX_SHARD_BYTES},
    ),
]

_SAVE_BODY: dict[str, Any] = {
    "parameters": precondition_parameters(
        'Save only if this is the current version: "VERSION_ID" (412 if not)',
        "'*': save only if the model does not exist yet (412 if it does)",
    ),
    "requestBody": {
        "required": True,
        "description": "What tf.io.http sends (multipart), or ModelArtifacts as JSON.",
        "content": {
            "multipart/form-data": {"schema": {"$ref": "#/components/schemas/SaveModelFiles"}},
            "application/json": {"schema": {"$ref": "#/components/schemas/ModelArtifacts"}},
        },
    },
}
_SAVE_ERRORS = error_responses(
    ErrorCode.PRECONDITION_FAILED,
    ErrorCode.INVALID_MODEL,
    ErrorCode.UNKNOWN_STORE,
    ErrorCode.PAYLOAD_TOO_LARGE,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    ErrorCode.QUOTA_EXCEEDED,
    ErrorCode.REQUEST_TIMEOUT,
    ErrorCode.UNAVAILABLE,
)
_WEIGHT_CONTENT = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}


async def _save(
    request: Request, store: ModelStore, name: str, settings: Settings, grant: Grant
) -> Response:
    grant.require(Action.WRITE, store.name, name)
    conditions = preconditions(request)
    declared = _content_length(request)
    if declared is not None and declared > settings.max_body_bytes:
        raise too_large(settings.max_body_bytes)
    body = BodyLimit(request.stream(), settings.max_body_bytes)
    # A refusal drains what is left of the body first (service.draining).
    upload = await read_save_request(
        request, aiter(body), settings.max_json_body_bytes, store.max_model_json_bytes
    )
    version = await store.save(
        name,
        upload.model_json,
        upload.weight_files,
        expected_bytes=upload.expected_bytes,
        if_match=conditions.if_match,
        if_none_match=conditions.if_none_match,
    )
    # The version just saved, even if a concurrent save has become current since.
    load_url = f"{model_base_url(request, store.name, name)}model.json?version={version.id}"
    result = SaveResult(
        modelArtifactsInfo=version.modelArtifactsInfo,
        modelUrl=store.url(name),
        versionId=version.id,
        loadUrl=load_url,
    )
    return JSONResponse(result.model_dump(), status_code=201, headers={"Location": load_url})


def _content_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    return int(value) if value and value.isdigit() else None


@router.post(
    MODEL_PATH,
    operation_id="saveModel",
    status_code=201,
    response_model=SaveResult,
    openapi_extra=_SAVE_BODY,
    responses=_SAVE_ERRORS,
)
async def save_model(
    request: Request, store: StoreDep, name: str, settings: SettingsDep, grant: GrantDep
) -> Response:
    """Save a model (what tf.io.http POSTs); creates a new version."""
    return await _save(request, store, name, settings, grant)


@router.put(
    MODEL_PATH,
    operation_id="saveModelPut",
    status_code=201,
    response_model=SaveResult,
    openapi_extra=_SAVE_BODY,
    responses=_SAVE_ERRORS,
)
async def save_model_put(
    request: Request, store: StoreDep, name: str, settings: SettingsDep, grant: GrantDep
) -> Response:
    """Save a model with PUT (requestInit.method 'PUT'); creates a new version."""
    return await _save(request, store, name, settings, grant)


@router.get(
    MODEL_PATH + "/model.json",
    operation_id="loadModelJson",
    response_model=ModelJSON,
    responses=error_responses(
        ErrorCode.MODEL_NOT_FOUND,
        ErrorCode.VERSION_NOT_FOUND,
        ErrorCode.UNKNOWN_STORE,
        ErrorCode.INVALID_VIEW,
        ErrorCode.QUOTA_EXCEEDED,
    ),
)
async def load_model_json(
    request: Request,
    store: StoreDep,
    views: ViewsDep,
    name: str,
    grant: LoadGrantDep,
    version: VersionQuery = None,
    original: Annotated[bool, Query(description="model.json byte for byte as saved")] = False,
    quantize: QuantizeQuery = None,
    shard_bytes: ShardBytesQuery = None,
) -> Response:
    """Load model.json; its weight paths point at the version's immutable weight URLs.

    With ``quantize`` or ``shard_bytes``, a view of the version: derived on the first
    request, stored with the version, and served like it from then on.
    """
    grant.require(Action.READ, store.name, name, version)
    view = ViewOptions.parse(quantize, shard_bytes)
    if original:
        if view is not None:
            raise InvalidViewError(
                "original=true serves model.json as saved; leave out quantize and shard_bytes"
            )
        info = await store.version(name, version)
        headers = _model_json_headers(info.id, "original")
        if _matches(request, headers["ETag"]):
            return Response(status_code=304, headers=headers)
        content = await store.original_model_json(name, info.id)
        return Response(content, media_type="application/json", headers=headers)
    if view is not None:
        info = await store.version(name, version)
        headers = _model_json_headers(info.id, view.segment)
        if _matches(request, headers["ETag"]):
            return Response(status_code=304, headers=headers)
        _view, stream = await views.model_json(name, info.id, view)
    else:
        info, stream = await store.open_model_json(name, version)  # current: one read
        headers = _model_json_headers(info.id)
        if _matches(request, headers["ETag"]):
            await stream.aclose()
            return Response(status_code=304, headers=headers)
    headers["Content-Length"] = str(stream.info.size)
    return await _streamed(request, stream, "application/json", headers)


def _model_json_headers(version_id: str, form: str | None = None) -> dict[str, str]:
    """``form``: "original", a view's segment, or None for model.json as served."""
    etag = f'"{version_id}{"-" + form if form else ""}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache", "X-Model-Version": version_id}
    if form and form != "original":
        headers["X-Model-View"] = form
    return headers


_WEIGHT_ERRORS = error_responses(
    ErrorCode.WEIGHT_FILE_NOT_FOUND,
    ErrorCode.MODEL_NOT_FOUND,
    ErrorCode.VERSION_NOT_FOUND,
    ErrorCode.RANGE_NOT_SATISFIABLE,
)
_RANGES_HEADER = {"Accept-Ranges": {"description": "bytes", "schema": {"type": "string"}}}


def _content_range(description: str) -> dict[str, Any]:
    return {"Content-Range": {"description": description, "schema": {"type": "string"}}}


_WEIGHT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": _WEIGHT_CONTENT, "headers": _RANGES_HEADER},
    206: {
        "description": "The one byte range a Range header asks for (If-Range: the ETag)",
        "content": _WEIGHT_CONTENT,
        "headers": {**_RANGES_HEADER, **_content_range("bytes FIRST-LAST/SIZE")},
    },
    **_WEIGHT_ERRORS,
    416: {**_WEIGHT_ERRORS[416], "headers": _content_range("bytes */SIZE")},
}


@router.get(
    MODEL_PATH + "/~v/{version}/{path:path}",
    operation_id="loadWeightFile",
    response_class=Response,
    responses=_WEIGHT_RESPONSES,
)
async def load_weight_file(
    request: Request,
    store: StoreDep,
    views: ViewsDep,
    name: str,
    version: str,
    path: str,
    grant: LoadGrantDep,
) -> Response:
    """Load one weight file of a version or of its view, or one byte range; immutable
    (cached for a year)."""
    grant.require(Action.READ, store.name, name, version)
    stored = await views.weight_file(name, version, path)
    etag = f'"{stored.sha256}"'
    headers = {"ETag": etag, "Cache-Control": IMMUTABLE, "Accept-Ranges": "bytes"}
    if _matches(request, etag):  # before Range (RFC 9110 §13.2.2); no byte is opened
        return Response(status_code=304, headers=headers)
    wanted = requested_range(request.method, request.headers, etag, stored.size)
    if wanted is None:
        _stored, stream = await views.open_weight_file(name, version, path)
        headers["Content-Length"] = str(stored.size)
        return await _streamed(request, stream, "application/octet-stream", headers)
    _stored, stream = await views.open_weight_file(
        name, version, path, start=wanted.start, end=wanted.end
    )
    headers["Content-Length"] = str(wanted.end - wanted.start)
    headers["Content-Range"] = wanted.content_range
    return await _streamed(request, stream, "application/octet-stream", headers, 206)


async def _streamed(
    request: Request,
    stream: ObjectStream,
    media_type: str,
    headers: dict[str, str],
    status_code: int = 200,
) -> Response:
    """The stream as the body; for HEAD, only the headers, and no byte is read.

    A small body is sent whole: a streamed response costs a task per request.
    """
    if request.method == "HEAD":
        await stream.aclose()
        return Response(media_type=media_type, headers=headers, status_code=status_code)
    if stream.length <= WHOLE_BODY_BYTES:
        try:
            body = b"".join([chunk async for chunk in stream])
        finally:
            await stream.aclose()
        return Response(body, status_code, media_type=media_type, headers=headers)
    return StreamingResponse(_closing(stream), status_code, media_type=media_type, headers=headers)


async def _closing(stream: Any) -> AsyncIterator[bytes]:
    try:
        async for chunk in stream:
            yield chunk
    finally:
        await stream.aclose()


def _matches(request: Request, etag: str) -> bool:
    candidates = request.headers.get("if-none-match", "")
    return etag in [tag.strip().removeprefix("W/") for tag in candidates.split(",")]


@router.get(
    MODEL_PATH,
    operation_id="getModelInfo",
    response_model=ModelInfo,
    responses=error_responses(ErrorCode.MODEL_NOT_FOUND, ErrorCode.UNKNOWN_STORE),
)
async def get_model_info(
    request: Request,
    store: StoreDep,
    name: str,
    grant: GrantDep,
    limit: Annotated[
        int | None, Query(ge=1, le=1000, description="Only the newest this many versions")
    ] = None,
    cursor: Annotated[
        str | None, Query(description="Versions older than this id (from the Link header)")
    ] = None,
) -> Response:
    """A model's info: the current version, and its versions oldest first.

    With ``limit``, the newest ``limit`` versions; the ``Link`` header (rel="next") pages
    on to older ones.
    """
    grant.require(Action.READ, store.name, name)
    current = await store.version(name)
    page = await store.version_page(name, limit=limit, before=cursor)
    info = model_info(store, name, page.versions, await store.aliases.all(name), current)
    headers = {}
    if page.next_cursor is not None:
        next_url = request.url.include_query_params(cursor=page.next_cursor)
        headers["Link"] = f'<{next_url}>; rel="next"'
    return JSONResponse(info.model_dump(), headers=headers)


@router.delete(
    MODEL_PATH,
    operation_id="removeModel",
    response_model=ModelInfo,
    responses=error_responses(
        ErrorCode.MODEL_NOT_FOUND,
        ErrorCode.VERSION_NOT_FOUND,
        ErrorCode.UNKNOWN_STORE,
        ErrorCode.VERSION_IN_USE,
    ),
)
async def remove_model(
    store: StoreDep, name: str, grant: GrantDep, version: VersionQuery = None
) -> ModelInfo:
    """Remove a model, or one version of it; answers the model's info before removal.

    A version an alias points to is refused (409 version_in_use); removing the model
    removes its aliases.
    """
    grant.require(Action.DELETE, store.name, name)
    aliases = await store.aliases.all(name)
    return model_info(store, name, await store.remove(name, version), aliases)


@router.get(
    "/{store}",
    operation_id="listModels",
    response_model=ModelList,
    responses=error_responses(ErrorCode.UNKNOWN_STORE),
)
async def list_models(
    request: Request,
    store: StoreDep,
    grant: GrantDep,
    prefix: Annotated[str, Query(description="Only names starting with this")] = "",
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
    cursor: Annotated[str | None, Query(description="From the Link rel=next header")] = None,
) -> Response:
    """List models like tf.io.listModels(); the next page's URL is in the Link header.

    With tokens, only the models the token may read; a page may then hold fewer than
    ``limit`` (follow the Link header to the end).
    """
    page = await store.list_models(prefix, cursor=cursor, limit=limit)
    body = {
        store.url(name): version.modelArtifactsInfo.model_dump()
        for name, version in page.models.items()
        if grant.may_read(store.name, name)
    }
    headers = {}
    if page.next_cursor is not None:
        next_url = request.url.include_query_params(cursor=page.next_cursor)
        headers["Link"] = f'<{next_url}>; rel="next"'
    return JSONResponse(body, headers=headers)


def model_info(
    store: ModelStore,
    name: str,
    versions: list[VersionInfo],
    aliases: dict[str, str],
    current: VersionInfo | None = None,
) -> ModelInfo:
    current = current or versions[-1]
    return ModelInfo(
        url=store.url(name),
        store=store.name,
        name=name,
        currentVersion=current.id,
        modelArtifactsInfo=current.modelArtifactsInfo,
        versions=versions,
        aliases=aliases,
    )


_ZIP_CONTENT = {"application/zip": {"schema": {"type": "string", "format": "binary"}}}


@router.get(
    MODEL_PATH + "/~export",
    operation_id="exportModel",
    response_class=Response,
    responses={
        200: {"content": _ZIP_CONTENT},
        **error_responses(
            ErrorCode.MODEL_NOT_FOUND, ErrorCode.VERSION_NOT_FOUND, ErrorCode.INVALID_NAME
        ),
    },
)
async def export_model(
    request: Request,
    store: StoreDep,
    name: str,
    grant: LoadGrantDep,
    version: VersionQuery = None,
    prefix: Annotated[str | None, Query(description="File prefix; the name's last segment")] = None,
) -> Response:
    """Export as tf.io.browserDownloads saves: a zip of PREFIX.json and PREFIX.weights.bin."""
    grant.require(Action.READ, store.name, name, version)
    chosen = downloads_prefix(name, prefix)
    info = await store.version(name, version)
    model_json = downloads_model_json(await store.original_model_json(name, info.id), chosen)
    archive = ZipArchive(
        [
            ZipEntry(f"{chosen}.json", len(model_json), model_json),
            ZipEntry(
                f"{chosen}.weights.bin",
                sum(f.size for f in info.files),
                joined_weights(store, name, info),
            ),
        ]
    )
    headers = {
        "Content-Length": str(len(archive)),
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(chosen)}.zip",
        "X-Model-Version": info.id,
    }
    if request.method == "HEAD":  # the archive's length is known without reading a byte
        return Response(media_type="application/zip", headers=headers)
    return StreamingResponse(archive, media_type="application/zip", headers=headers)


# HEAD answers what GET would, without a body: loaders and caches probe with it, and a
# share link's ?token= works on it too (service.auth). Kept out of the OpenAPI document,
# where each GET already describes the answer.
for _path, _load in (
    (MODEL_PATH + "/model.json", load_model_json),
    (MODEL_PATH + "/~v/{version}/{path:path}", load_weight_file),
    (MODEL_PATH + "/~export", export_model),
):
    router.add_api_route(_path, _load, methods=["HEAD"], include_in_schema=False)
