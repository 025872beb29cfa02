"""The console's pages: stores, the models of a store, a model, a tensor, two versions compared.

Each page reads what the API would (the model layer, the request's grant) and renders it;
the grant also decides which actions a page offers. With tokens on, a page asked for without
one renders a token form; the console's script then asks again with the token in an
``Authorization`` header and swaps the page in (so no token ever sits in a URL).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles

from modelshelf.access import Action, Grant
from modelshelf.modelstore import ModelStore, Shelf
from modelshelf.modelstore.inspection import overview
from modelshelf.modelstore.tensorstats import compare_versions, tensor_stats
from modelshelf.modelstore.views import ViewSize
from modelshelf.schemas.errors import CodedError
from modelshelf.service.console import formatting
from modelshelf.service.console.charts import histogram_bars
from modelshelf.service.dependencies import model_base_url
from modelshelf.service.routing import ModelNameConvertor  # noqa: F401  (registers 'modelname')

CONSOLE_PREFIX = "/ui"
ASSETS_PATH = CONSOLE_PREFIX + "/~assets"
MODELS_PER_PAGE = 50
_HERE = Path(__file__).parent

templates = Jinja2Templates(directory=_HERE / "templates")
templates.env.filters.update(
    bytes=formatting.human_bytes,
    date=formatting.short_date,
    number=formatting.number,
    shape=formatting.shape,
    pretty_json=formatting.pretty_json,
)
templates.env.globals.update(assets=ASSETS_PATH, console=CONSOLE_PREFIX, quote=quote)

router = APIRouter(include_in_schema=False)


def is_console_path(path: str) -> bool:
    """Pages that render a token form rather than a 401 when no token comes with them."""
    return path == "/" or path.startswith(CONSOLE_PREFIX + "/")


def assets() -> StaticFiles:
    return StaticFiles(directory=_HERE / "static")


@dataclass(frozen=True)
class StoreRow:
    name: str
    kind: str
    models: int
    used_bytes: int
    quota_bytes: int | None

    @property
    def used_percent(self) -> float | None:
        if not self.quota_bytes:
            return None
        return min(100.0, 100.0 * self.used_bytes / self.quota_bytes)


@dataclass(frozen=True)
class ViewRow:
    """A stored view of the shown version, next to the version's own weight bytes."""

    segment: str
    label: str
    weight_bytes: int
    percent: str
    query: str  # model.json's query string that loads the view of this version

    @classmethod
    def of(cls, size: ViewSize, version_id: str, original_bytes: int) -> ViewRow:
        options = size.options
        return cls(
            segment=options.segment,
            label=formatting.view_label(options.quantize, options.shard_bytes),
            weight_bytes=size.weight_bytes,
            percent=formatting.percent_of(size.weight_bytes, original_bytes),
            query=urlencode({"version": version_id, **options.query}),
        )


@router.get("/", response_class=HTMLResponse, name="console_stores")
async def stores_page(request: Request) -> Response:
    async def page(grant: Grant) -> Response:
        shelf: Shelf = request.app.state.shelf
        rows = [
            StoreRow(
                name, store.kind, await store.count_models(), await store.usage(), store.quota_bytes
            )
            for name, store in shelf.stores.items()
            if grant.reaches(name)
        ]
        return _render(request, "stores.html", grant, stores=rows)

    return await _guarded(request, page)


@router.get(CONSOLE_PREFIX + "/{store}", response_class=HTMLResponse, name="console_models")
async def models_page(
    request: Request, store: str, prefix: str = "", cursor: str | None = None
) -> Response:
    async def page(grant: Grant) -> Response:
        model_store = _store(request, store)
        listing = await model_store.list_models(prefix, cursor=cursor, limit=MODELS_PER_PAGE)
        rows = []
        for name, current in listing.models.items():
            if not grant.may_read(store, name):
                continue
            aliases = await model_store.aliases.all(name)
            rows.append((name, current, sorted(a for a, v in aliases.items() if v == current.id)))
        next_url = None
        if listing.next_cursor is not None:
            next_url = str(request.url.include_query_params(cursor=listing.next_cursor))
        return _render(
            request,
            "models.html",
            grant,
            store=model_store,
            rows=rows,
            prefix=prefix,
            next_url=next_url,
            first_page=cursor is not None,
            may_upload=grant.may_any(Action.WRITE, store),
        )

    return await _guarded(request, page)


@router.get(
    CONSOLE_PREFIX + "/{store}/{name:modelname}", response_class=HTMLResponse, name="console_model"
)
async def model_page(
    request: Request, store: str, name: str, version: str | None = None
) -> Response:
    async def page(grant: Grant) -> Response:
        model_store = _store(request, store)
        grant.require(Action.READ, store, name)
        current = await model_store.version(name)
        shown = await model_store.version(name, version) if version else current
        versions = list(reversed(await model_store.versions(name)))
        aliases = await model_store.aliases.all(name)
        document = await model_store.original_model_json(name, shown.id)
        shelf: Shelf = request.app.state.shelf
        original_bytes = sum(item.size for item in shown.files)
        view_sizes = await shelf.views(store).sizes(name, shown.id)
        return _render(
            request,
            "model.html",
            grant,
            store=model_store,
            name=name,
            current=current,
            shown=shown,
            versions=versions,
            aliases=aliases,
            aliases_of=_aliases_of(aliases),
            overview=await asyncio.to_thread(overview, document),  # CPU on big graphs
            original_bytes=original_bytes,
            views=[ViewRow.of(size, shown.id, original_bytes) for size in view_sizes],
            model_json_url=model_base_url(request, store, name) + "model.json",
            may_write=grant.allows(Action.WRITE, store, name),
            may_delete=grant.allows(Action.DELETE, store, name),
            may_share=request.app.state.tokens is not None
            and grant.allows(Action.READ, store, name),
            may_copy_to=[
                s for s in shelf.stores if s != store and grant.allows(Action.WRITE, s, name)
            ],
        )

    return await _guarded(request, page)


@router.get(
    CONSOLE_PREFIX + "/{store}/{name:modelname}/~tensor",
    response_class=HTMLResponse,
    name="console_tensor",
)
async def tensor_page(
    request: Request, store: str, name: str, tensor: str, version: str | None = None
) -> Response:
    async def page(grant: Grant) -> Response:
        model_store = _store(request, store)
        grant.require(Action.READ, store, name)
        shown = await model_store.version(name, version)
        stats = await tensor_stats(model_store, name, shown.id, tensor)
        return _render(
            request,
            "tensor.html",
            grant,
            store=model_store,
            name=name,
            shown=shown,
            stats=stats,
            bars=histogram_bars(stats.edges, stats.counts),
        )

    return await _guarded(request, page)


@router.get(
    CONSOLE_PREFIX + "/{store}/{name:modelname}/~compare",
    response_class=HTMLResponse,
    name="console_compare",
)
async def compare_page(request: Request, store: str, name: str, a: str, b: str) -> Response:
    async def page(grant: Grant) -> Response:
        model_store = _store(request, store)
        grant.require(Action.READ, store, name)
        first = await model_store.version(name, a)
        second = await model_store.version(name, b)
        changes = await compare_versions(model_store, name, first.id, second.id)
        counts = Counter(change.status for change in changes)
        return _render(
            request,
            "compare.html",
            grant,
            store=model_store,
            name=name,
            first=first,
            second=second,
            changes=changes,
            counts=counts,
        )

    return await _guarded(request, page)


async def _guarded(request: Request, page: Any) -> Response:
    """The page, the token form when tokens are on and none came, or an error page."""
    grant: Grant = request.state.grant
    if request.app.state.tokens is not None and not _presented_token(request):
        return _render(request, "token.html", grant, status_code=401)
    try:
        response: Response = await page(grant)
    except CodedError as error:
        return _render(
            request,
            "error.html",
            grant,
            status_code=error.code.status,
            code=error.code.value,
            message=str(error),
        )
    return response


def _presented_token(request: Request) -> bool:
    return "authorization" in request.headers


def _render(
    request: Request, template: str, grant: Grant, status_code: int = 200, **context: Any
) -> Response:
    tokens_on = request.app.state.tokens is not None
    return templates.TemplateResponse(
        request,
        template,
        {"tokens_on": tokens_on, "grant": grant, **context},
        status_code=status_code,
        headers={"Cache-Control": "no-store", "Vary": "Authorization"},
    )


def _store(request: Request, name: str) -> ModelStore:
    shelf: Shelf = request.app.state.shelf
    return shelf.store(name)


def _aliases_of(aliases: dict[str, str]) -> dict[str, list[str]]:
    by_version: dict[str, list[str]] = {}
    for alias, version_id in sorted(aliases.items()):
        by_version.setdefault(version_id, []).append(alias)
    return by_version
