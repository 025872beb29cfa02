"""``AsyncClient`` and ``Client``: the SDK, mirroring ``tf.io`` over the service's REST API."""

from __future__ import annotations

import asyncio
import json
import math
import os
import threading
from collections.abc import AsyncIterator, Coroutine, Generator, Iterable, Iterator, Sequence
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote, unquote, urlsplit

import httpx

from modelshelf._artifacts import ModelArtifacts
from modelshelf._exceptions import ModelshelfError, UnavailableError, error_for
from modelshelf._files import (
    FileSink,
    folder_parts,
    safe_relative_path,
    unpack_export,
)
from modelshelf._multipart import CHUNK_BYTES, Part, Progress, multipart_body
from modelshelf._urls import LoadSource, ModelURL, store_and_prefix, view_query
from modelshelf.schemas.artifacts import ModelArtifactsInfo, SaveResult
from modelshelf.schemas.maintenance import DEFAULT_GC_AGE_SECONDS, GcReport
from modelshelf.schemas.tokens import CreatedToken, ShareLink, TokenInfo, TokenList
from modelshelf.schemas.versions import ModelInfo, PruneResult, StoreInfo, StoreList, VersionInfo

DEFAULT_URL = "http://127.0.0.1:8000"
TOKEN_VARIABLE = "MODELSHELF_TOKEN"
T = TypeVar("T")
WeightSource = bytes | Path | Iterable[bytes]
# bytes per element of each dtype (or quantization dtype) a weight file holds; not strings
_DTYPE_BYTES = {
    "float32": 4,
    "int32": 4,
    "bool": 1,
    "complex64": 8,
    "float16": 2,
    "uint16": 2,
    "uint8": 1,
}


class AsyncClient:
    """An async client of one modelshelf server.

    Args:
        base_url: the server, e.g. ``http://127.0.0.1:8000``; defaults to ``MODELSHELF_URL``.
        token: sent as ``Authorization: Bearer TOKEN``; defaults to ``MODELSHELF_TOKEN``
            (``token=""`` sends none even when that is set).
        headers: extra headers on every request.
        timeout: seconds, or an ``httpx.Timeout``.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | httpx.Timeout = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = (base_url or os.environ.get("MODELSHELF_URL") or DEFAULT_URL).rstrip("/")
        if token is None:
            token = os.environ.get(TOKEN_VARIABLE)
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            auth=BearerToken(token) if token else None,
            timeout=timeout,
            transport=transport,
        )

    # -- saving ----------------------------------------------------------------------------

    async def save(
        self,
        url: str,
        artifacts: ModelArtifacts,
        *,
        progress: Progress | None = None,
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> SaveResult:
        """Save artifacts as a new version of ``url`` (like ``model.save``); raises on refusal.

        Args:
            if_match: save only if this version id is the current one (optimistic
                concurrency: load, change, save with the id you loaded).
            if_none_match: save only if the model does not exist yet.

        Raises:
            ConflictError: the condition did not hold (412 precondition_failed).
        """
        model_json = json.dumps(artifacts.to_model_json(), ensure_ascii=False).encode()
        files = [("model.weights.bin", artifacts.weight_data or b"")]
        return await self.save_files(
            url,
            model_json,
            files,
            progress=progress,
            if_match=if_match,
            if_none_match=if_none_match,
        )

    async def save_files(
        self,
        url: str,
        model_json: bytes | Path,
        weight_files: Sequence[tuple[str, WeightSource]],
        *,
        progress: Progress | None = None,
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> SaveResult:
        """Save model.json and its weight files, streamed, one part per manifest path.

        ``weight_files`` are ``(manifest path, bytes | file path | iterable of bytes)`` in
        manifest order; files and iterables are never read whole into memory.
        ``if_match`` and ``if_none_match`` are as for ``save``.
        """
        parts = [Part("model.json", model_json, "application/json")]
        parts += [Part(path, source) for path, source in weight_files]
        body = multipart_body(parts)
        response = await self._send(
            "POST",
            ModelURL.parse(url).path,
            content=_in_thread(body.stream(progress)),
            headers={**body.headers(), **_conditions(if_match, if_none_match)},
        )
        return SaveResult.model_validate(response.json())

    async def push(
        self, folder: str | Path, url: str, *, progress: Progress | None = None
    ) -> SaveResult:
        """Save a TF.js folder as-is (model.json plus the files its manifest names)."""
        model_json, files = await asyncio.to_thread(folder_parts, Path(folder))
        return await self.save_files(url, model_json, files, progress=progress)

    # -- loading ---------------------------------------------------------------------------

    async def load(
        self,
        url: str,
        version: str | None = None,
        *,
        quantize: str | None = None,
        shard_bytes: int | None = None,
    ) -> ModelArtifacts:
        """Load a model (the current version by default) with its weights in memory.

        Args:
            url: a model URL (``indexeddb://my-model``), or a share link's URL as
                ``share`` returns it, which loads with the link's own token (never this
                client's) from the server the link names.
            version: a version id or alias; for a share link, replaces the link's own.
            quantize: load a view of the version whose float32 weights the server quantized
                as tfjs-converter does: ``"float16"``, ``"uint8"`` or ``"uint16"``.
                ``weights()`` dequantizes them, as TF.js does.
            shard_bytes: the view's weight file size in bytes (the server takes 1 MiB to
                64 MiB; 4 MiB when only ``quantize`` is given). Alone, it reshards the
                weights without changing a byte of them.

        Raises:
            NotFoundError: no such model or version.
            InvalidRequestError: the server refused the view's options (code ``invalid_view``).
            UnauthorizedError: the token (or the share link) is not valid, or has ended.
            ForbiddenError: the token may not read this model or version.
        """
        source = LoadSource.parse(url)
        query = source.model_json_query(version, view_query(quantize, shard_bytes))
        document = await self._model_json(source, query)
        data = bytearray()
        for group in document.get("weightsManifest") or []:
            for path in group["paths"]:
                weights = await self._send(
                    "GET", source.folder + path, params=source.query, **_credentials(source)
                )
                data += weights.content
        return ModelArtifacts.from_model_json(document, bytes(data))

    async def load_model_json(
        self,
        url: str,
        version: str | None = None,
        *,
        original: bool = False,
        quantize: str | None = None,
        shard_bytes: int | None = None,
    ) -> dict[str, Any]:
        """model.json as served (weight paths point at the version) or as it was saved.

        ``url`` is a model URL or a share link's URL; ``quantize`` and ``shard_bytes`` ask
        for a view, as for ``load``.
        """
        source = LoadSource.parse(url)
        params = {
            **source.model_json_query(version, view_query(quantize, shard_bytes)),
            **({"original": "true"} if original else {}),
        }
        return await self._model_json(source, params)

    async def pull(
        self,
        url: str,
        folder: str | Path,
        *,
        version: str | None = None,
        quantize: str | None = None,
        shard_bytes: int | None = None,
        progress: Progress | None = None,
    ) -> Path:
        """Write a version into ``folder`` as it was saved: model.json and its weight files.

        With ``quantize`` or ``shard_bytes`` (as for ``load``), write a view of the version
        instead: its model.json, with the TF.js ``quantization`` of each quantized weight,
        and its ``groupG-shardIofN.bin`` weight files. The folder loads with tfjs-node's
        ``file://`` loader. Returns model.json's path.
        """
        model, target = ModelURL.parse(url), Path(folder)
        view = view_query(quantize, shard_bytes)
        if view:
            return await self._pull_view(model, target, version, view, progress)
        info = await self._version_info(model, version)
        total, done = sum(item.size for item in info.files), 0
        for item in info.files:
            destination = target / safe_relative_path(item.path)
            done = await self._download(
                f"{model.path}/~v/{info.id}/{item.path}", destination, progress, done, total
            )
        original = await self._send(
            "GET", f"{model.path}/model.json", params={"version": info.id, "original": "true"}
        )
        return await asyncio.to_thread(
            FileSink.write_bytes, target / "model.json", original.content
        )

    async def _pull_view(
        self,
        model: ModelURL,
        target: Path,
        version: str | None,
        view: dict[str, str],
        progress: Progress | None,
    ) -> Path:
        """A view's weight files, named as the converter names them, and its model.json with
        its weight paths made relative to the folder."""
        source = LoadSource(model.path + "/")
        document = await self._model_json(source, source.model_json_query(version, view))
        manifest = document.get("weightsManifest") or []
        downloads: list[tuple[str, Path]] = []
        names: set[str] = set()
        for group in manifest:
            local: list[str] = []
            for path in group["paths"]:
                name = unquote(PurePosixPath(urlsplit(path).path).name)
                if name in names:
                    raise ModelshelfError(f"the view names two weight files {name!r}: {path!r}")
                names.add(name)
                downloads.append((path, target / safe_relative_path(name)))
                local.append(name)
            group["paths"] = local
        total, done = _manifest_bytes(manifest), 0
        for path, destination in downloads:
            done = await self._download(source.folder + path, destination, progress, done, total)
        written = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
        return await asyncio.to_thread(FileSink.write_bytes, target / "model.json", written)

    async def export(
        self,
        url: str,
        folder: str | Path,
        *,
        version: str | None = None,
        prefix: str | None = None,
        progress: Progress | None = None,
    ) -> list[Path]:
        """Write the two files ``downloads://`` produces: PREFIX.json and PREFIX.weights.bin."""
        model, target = ModelURL.parse(url), Path(folder)
        params = {**_version(version), **({"prefix": prefix} if prefix else {})}
        archive = target / f".modelshelf-export-{os.getpid()}.zip"
        try:
            await self._download(f"{model.path}/~export", archive, progress, 0, None, params)
            return await asyncio.to_thread(unpack_export, archive, target)
        finally:
            await asyncio.to_thread(archive.unlink, missing_ok=True)

    # -- management ------------------------------------------------------------------------

    async def list_models(
        self, store_or_prefix_url: str = "indexeddb"
    ) -> dict[str, ModelArtifactsInfo]:
        """Like ``tf.io.listModels()``: ``{"indexeddb://a": ModelArtifactsInfo}``, every page."""
        store, prefix = store_and_prefix(store_or_prefix_url)
        found: dict[str, ModelArtifactsInfo] = {}
        next_url: str | None = f"/v1/models/{store}"
        params: dict[str, str] | None = {"prefix": prefix} if prefix else None
        while next_url:
            response = await self._send("GET", next_url, params=params)
            found.update(
                {k: ModelArtifactsInfo.model_validate(v) for k, v in response.json().items()}
            )
            next_url = response.links.get("next", {}).get("url")
            params = None
        return found

    async def list_stores(self) -> list[StoreInfo]:
        """The server's stores and the kind of backend behind each."""
        response = await self._send("GET", "/v1/stores")
        return StoreList.model_validate(response.json()).stores

    async def get_model_info(self, url: str, *, limit: int | None = None) -> ModelInfo:
        """A model's current version and every version (only the newest ``limit`` if given)."""
        params = {"limit": str(limit)} if limit is not None else None
        response = await self._send("GET", ModelURL.parse(url).path, params=params)
        return ModelInfo.model_validate(response.json())

    async def list_versions(self, url: str, *, limit: int | None = None) -> list[VersionInfo]:
        """A model's versions, oldest first: every one, or the newest ``limit``."""
        return (await self.get_model_info(url, limit=limit)).versions

    async def remove_model(self, url: str, version: str | None = None) -> ModelInfo:
        """Remove a model (or one version); returns its info from before the removal."""
        response = await self._send("DELETE", ModelURL.parse(url).path, params=_version(version))
        return ModelInfo.model_validate(response.json())

    async def copy_model(self, source: str, destination: str) -> ModelInfo:
        """Copy the source's current version to the destination (any two stores)."""
        return await self._transfer("/v1/copy", source, destination)

    async def move_model(self, source: str, destination: str) -> ModelInfo:
        """Move a model with all its versions; the source goes only once the copy is verified."""
        return await self._transfer("/v1/move", source, destination)

    # -- aliases and pruning ---------------------------------------------------------------

    async def set_alias(
        self,
        url: str,
        alias: str,
        version: str,
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> ModelInfo:
        """Point ``alias`` (e.g. ``"prod"``) at a version id or another alias.

        Args:
            if_match: move the alias only if it points at this version id now.
            if_none_match: create the alias only; refuse if it exists.

        Raises:
            NotFoundError: no such model or version.
            ConflictError: the condition did not hold (412 precondition_failed).
        """
        response = await self._send(
            "PUT",
            _alias_path(url, alias),
            json={"versionId": version},
            headers=_conditions(if_match, if_none_match),
        )
        return ModelInfo.model_validate(response.json())

    async def remove_alias(self, url: str, alias: str, *, if_match: str | None = None) -> ModelInfo:
        """Remove an alias (its version stays); returns the model's info."""
        response = await self._send(
            "DELETE", _alias_path(url, alias), headers=_conditions(if_match, False)
        )
        return ModelInfo.model_validate(response.json())

    async def prune(self, url: str, keep: int, *, dry_run: bool = False) -> PruneResult:
        """Remove all but the newest ``keep`` versions; versions an alias points to stay."""
        response = await self._send(
            "POST", f"{ModelURL.parse(url).path}/~prune", json={"keep": keep, "dryRun": dry_run}
        )
        return PruneResult.model_validate(response.json())

    async def gc(
        self,
        *,
        dry_run: bool = False,
        older_than: int = DEFAULT_GC_AGE_SECONDS,
        store: str | None = None,
    ) -> GcReport:
        """Remove what killed saves left behind (needs ``admin:*``): what went, bytes freed.

        Args:
            dry_run: only report what would go.
            older_than: seconds; only what a save began longer ago goes, so saves in
                progress keep their bytes. Make it longer than the longest save.
            store: one store's name; every store by default.

        Raises:
            ForbiddenError: this client's token lacks ``admin:*``.
            NotFoundError: ``store`` names no store of the server.
        """
        body = {"dryRun": dry_run, "olderThan": older_than, "store": store}
        response = await self._send("POST", "/v1/admin/gc", json=body)
        return GcReport.model_validate(response.json())

    # -- tokens and share links -------------------------------------------------------------

    async def create_token(
        self, name: str, scopes: str | Sequence[str], expires_in: int | None = None
    ) -> CreatedToken:
        """Issue a token (needs ``admin:*``); the answer holds its secret, shown only this once.

        Args:
            name: a label for people, e.g. ``"ci"``.
            scopes: ``ACTION:STORE[/NAME]`` each, e.g. ``["write:indexeddb/team/*", "read:*"]``
                (one scope may be given as a string).
            expires_in: seconds until the token expires; never, if None.

        Raises:
            InvalidRequestError: a scope does not parse, or names an unknown store.
            ForbiddenError: this client's token lacks ``admin:*``.
            ConflictError: the server runs with tokens off (``MODELSHELF_AUTH=none``).
        """
        scope_list = [scopes] if isinstance(scopes, str) else list(scopes)
        body = {"name": name, "scopes": scope_list, "expiresIn": expires_in}
        response = await self._send("POST", "/v1/tokens", json=body)
        return CreatedToken.model_validate(response.json())

    async def list_tokens(self) -> list[TokenInfo]:
        """Every token and share link, oldest first (needs ``admin:*``), without secrets."""
        response = await self._send("GET", "/v1/tokens")
        return TokenList.model_validate(response.json()).tokens

    async def revoke_token(self, token_id: str) -> TokenInfo:
        """Revoke a token by its id (needs ``admin:*``); share links it made end with it.

        Raises:
            NotFoundError: no token has this id.
        """
        response = await self._send("DELETE", f"/v1/tokens/{quote(token_id, safe='')}")
        return TokenInfo.model_validate(response.json())

    async def share(
        self, url: str, expires_in: int = 3600, version: str | None = None
    ) -> ShareLink:
        """A model.json URL that loads ``url`` with no other credentials until it expires.

        The link reads this one model (only ``version``, if given) and never outlives this
        client's token. Load it with ``load(link.url)``, TF.js's ``loadLayersModel`` or
        ``loadGraphModel``, or any HTTP client.

        Raises:
            NotFoundError: no such model or version.
            ForbiddenError: this client's token may not read the model.
            ConflictError: the server runs with tokens off (``MODELSHELF_AUTH=none``).
        """
        body: dict[str, Any] = {"expiresIn": expires_in}
        if version:
            body["version"] = version
        response = await self._send("POST", f"{ModelURL.parse(url).path}/~share", json=body)
        return ShareLink.model_validate(response.json())

    # -- plumbing --------------------------------------------------------------------------

    async def _model_json(self, source: LoadSource, params: dict[str, str]) -> dict[str, Any]:
        response = await self._send(
            "GET", source.folder + "model.json", params=params, **_credentials(source)
        )
        document: dict[str, Any] = response.json()
        return document

    async def _transfer(self, route: str, source: str, destination: str) -> ModelInfo:
        ModelURL.parse(source), ModelURL.parse(destination)
        body = {"source": source, "destination": destination}
        return ModelInfo.model_validate((await self._send("POST", route, json=body)).json())

    async def _version_info(self, model: ModelURL, version: str | None) -> VersionInfo:
        info = await self.get_model_info(str(model))
        wanted = info.aliases.get(version, version) if version else info.currentVersion
        for candidate in info.versions:
            if candidate.id == wanted:
                return candidate
        raise error_for(
            404, {"code": "version_not_found", "message": f"{model} has no version {wanted!r}"}
        )

    async def _send(self, method: str, path: str, **options: Any) -> httpx.Response:
        try:
            response = await self._http.request(method, path, **options)
        except httpx.TransportError as error:
            raise self._unreachable(error, path) from error
        if response.is_error:
            raise _error_of(response)
        return response

    async def _download(
        self,
        path: str,
        destination: Path,
        progress: Progress | None,
        done: int,
        total: int | None,
        params: dict[str, str] | None = None,
    ) -> int:
        sink = await asyncio.to_thread(FileSink.open, destination)
        try:
            async with self._http.stream("GET", path, params=params) as response:
                if response.is_error:
                    await response.aread()
                    raise _error_of(response)
                total = total if total is not None else _length(response)
                async for block in _blocks(response.aiter_bytes(), CHUNK_BYTES):
                    await asyncio.to_thread(sink.write, block)
                    done += len(block)
                    if progress:
                        progress(done, total)
            await asyncio.to_thread(sink.commit)
        except httpx.TransportError as error:
            await asyncio.to_thread(sink.discard)
            raise self._unreachable(error, path) from error
        except BaseException:
            await asyncio.to_thread(sink.discard)
            raise
        return done

    def _unreachable(self, error: Exception, path: str = "") -> ModelshelfError:
        target = urlsplit(path)
        if target.scheme:  # a share link names its own server
            return UnavailableError(
                f"cannot reach the modelshelf server at {target.scheme}://{target.netloc} "
                f"({error}); the share link names it"
            )
        return UnavailableError(
            f"cannot reach the modelshelf server at {self.base_url} ({error}); is it running? "
            f"Set MODELSHELF_URL or pass --server"
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class Client:
    """The blocking client: every ``AsyncClient`` method, run on a private event loop thread.

    Works the same in scripts and in notebooks (whose own loop is left alone). Takes the
    options of ``AsyncClient``: the server is ``base_url`` or ``MODELSHELF_URL``, the token
    ``token=`` or ``MODELSHELF_TOKEN`` (``token=""`` sends none).
    """

    def __init__(self, base_url: str | None = None, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="modelshelf", daemon=True
        )
        self._thread.start()
        self._async = self._run(_make_async_client(base_url, options))
        self.base_url = self._async.base_url

    def save(
        self,
        url: str,
        artifacts: ModelArtifacts,
        *,
        progress: Progress | None = None,
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> SaveResult:
        return self._run(
            self._async.save(
                url, artifacts, progress=progress, if_match=if_match, if_none_match=if_none_match
            )
        )

    def save_files(
        self,
        url: str,
        model_json: bytes | Path,
        weight_files: Sequence[tuple[str, WeightSource]],
        *,
        progress: Progress | None = None,
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> SaveResult:
        return self._run(
            self._async.save_files(
                url,
                model_json,
                weight_files,
                progress=progress,
                if_match=if_match,
                if_none_match=if_none_match,
            )
        )

    def push(self, folder: str | Path, url: str, *, progress: Progress | None = None) -> SaveResult:
        return self._run(self._async.push(folder, url, progress=progress))

    def load(
        self,
        url: str,
        version: str | None = None,
        *,
        quantize: str | None = None,
        shard_bytes: int | None = None,
    ) -> ModelArtifacts:
        return self._run(self._async.load(url, version, quantize=quantize, shard_bytes=shard_bytes))

    def load_model_json(
        self,
        url: str,
        version: str | None = None,
        *,
        original: bool = False,
        quantize: str | None = None,
        shard_bytes: int | None = None,
    ) -> dict[str, Any]:
        return self._run(
            self._async.load_model_json(
                url, version, original=original, quantize=quantize, shard_bytes=shard_bytes
            )
        )

    def pull(
        self,
        url: str,
        folder: str | Path,
        *,
        version: str | None = None,
        quantize: str | None = None,
        shard_bytes: int | None = None,
        progress: Progress | None = None,
    ) -> Path:
        return self._run(
            self._async.pull(
                url,
                folder,
                version=version,
                quantize=quantize,
                shard_bytes=shard_bytes,
                progress=progress,
            )
        )

    def export(
        self,
        url: str,
        folder: str | Path,
        *,
        version: str | None = None,
        prefix: str | None = None,
        progress: Progress | None = None,
    ) -> list[Path]:
        return self._run(
            self._async.export(url, folder, version=version, prefix=prefix, progress=progress)
        )

    def list_models(self, store_or_prefix_url: str = "indexeddb") -> dict[str, ModelArtifactsInfo]:
        return self._run(self._async.list_models(store_or_prefix_url))

    def list_stores(self) -> list[StoreInfo]:
        return self._run(self._async.list_stores())

    def get_model_info(self, url: str, *, limit: int | None = None) -> ModelInfo:
        return self._run(self._async.get_model_info(url, limit=limit))

    def list_versions(self, url: str, *, limit: int | None = None) -> list[VersionInfo]:
        return self._run(self._async.list_versions(url, limit=limit))

    def remove_model(self, url: str, version: str | None = None) -> ModelInfo:
        return self._run(self._async.remove_model(url, version))

    def copy_model(self, source: str, destination: str) -> ModelInfo:
        return self._run(self._async.copy_model(source, destination))

    def move_model(self, source: str, destination: str) -> ModelInfo:
        return self._run(self._async.move_model(source, destination))

    def set_alias(
        self,
        url: str,
        alias: str,
        version: str,
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> ModelInfo:
        return self._run(
            self._async.set_alias(
                url, alias, version, if_match=if_match, if_none_match=if_none_match
            )
        )

    def remove_alias(self, url: str, alias: str, *, if_match: str | None = None) -> ModelInfo:
        return self._run(self._async.remove_alias(url, alias, if_match=if_match))

    def prune(self, url: str, keep: int, *, dry_run: bool = False) -> PruneResult:
        return self._run(self._async.prune(url, keep, dry_run=dry_run))

    def gc(
        self,
        *,
        dry_run: bool = False,
        older_than: int = DEFAULT_GC_AGE_SECONDS,
        store: str | None = None,
    ) -> GcReport:
        return self._run(self._async.gc(dry_run=dry_run, older_than=older_than, store=store))

    def create_token(
        self, name: str, scopes: str | Sequence[str], expires_in: int | None = None
    ) -> CreatedToken:
        return self._run(self._async.create_token(name, scopes, expires_in))

    def list_tokens(self) -> list[TokenInfo]:
        return self._run(self._async.list_tokens())

    def revoke_token(self, token_id: str) -> TokenInfo:
        return self._run(self._async.revoke_token(token_id))

    def share(self, url: str, expires_in: int = 3600, version: str | None = None) -> ShareLink:
        return self._run(self._async.share(url, expires_in, version))

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._run(self._async.aclose())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()


class BearerToken(httpx.Auth):
    """``Authorization: Bearer TOKEN`` as httpx auth, so one request can go without it."""

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


def _credentials(source: LoadSource) -> dict[str, Any]:
    """No client token with a share link: its own is in its query, and another server's
    link must not receive this server's token."""
    return {"auth": None} if source.shared else {}


def _error_of(response: httpx.Response) -> ModelshelfError:
    return error_for(
        response.status_code, _json_or_none(response), response.headers.get("retry-after")
    )


async def _make_async_client(base_url: str | None, options: dict[str, Any]) -> AsyncClient:
    return AsyncClient(base_url, **options)


async def _in_thread(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Read a blocking byte iterator (files, user generators) off the event loop."""
    while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
        yield chunk


async def _blocks(chunks: AsyncIterator[bytes], size: int) -> AsyncIterator[memoryview]:
    """The chunks copied into blocks of ``size`` bytes (the last may be shorter), one buffer.

    A block is valid until the next one is asked for. Not ``aiter_bytes(size)``: httpx
    re-chunks through a BytesIO into fresh 1 MiB objects, and glibc hands such blocks back
    to the kernel when they are freed: hundreds of page faults per MiB (issue #4).
    """
    buffer = memoryview(bytearray(size))
    filled = 0
    async for chunk in chunks:
        view = memoryview(chunk)
        while view:
            taken = min(len(view), size - filled)
            buffer[filled : filled + taken] = view[:taken]
            filled, view = filled + taken, view[taken:]
            if filled == size:
                yield buffer
                filled = 0
    if filled:
        yield buffer[:filled]


def _conditions(if_match: str | None, if_none_match: bool) -> dict[str, str]:
    """The precondition headers the server reads (ETags are quoted version ids)."""
    if if_none_match:
        return {"If-None-Match": "*"}
    return {"If-Match": f'"{if_match}"'} if if_match else {}


def _alias_path(url: str, alias: str) -> str:
    return f"{ModelURL.parse(url).path}/~aliases/{quote(alias, safe='')}"


def _version(version: str | None) -> dict[str, str]:
    return {"version": version} if version else {}


def _manifest_bytes(manifest: list[dict[str, Any]]) -> int | None:
    """The bytes a manifest's weight files hold, from its specs; None with strings in it."""
    total = 0
    for group in manifest:
        for spec in group.get("weights") or []:
            dtype = (spec.get("quantization") or {}).get("dtype") or spec.get("dtype")
            width = _DTYPE_BYTES.get(dtype)
            if width is None:
                return None
            total += width * math.prod(spec.get("shape") or [])
    return total


def _length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length")
    return int(value) if value and value.isdigit() else None


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
