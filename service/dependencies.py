"""Request-scoped access to what ``lifespan`` opened, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request

from modelshelf.modelstore import ModelStore, Shelf, Views
from modelshelf.service.settings import Settings


async def get_shelf(request: Request) -> Shelf:
    shelf: Shelf = request.app.state.shelf
    return shelf


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_store(store: str, shelf: Annotated[Shelf, Depends(get_shelf)]) -> ModelStore:
    return shelf.store(store)


async def get_views(store: str, shelf: Annotated[Shelf, Depends(get_shelf)]) -> Views:
    return shelf.views(store)


ShelfDep = Annotated[Shelf, Depends(get_shelf)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[ModelStore, Depends(get_store)]
ViewsDep = Annotated[Views, Depends(get_views)]


def model_base_url(request: Request, store: str, name: str) -> str:
    """``http://host/v1/models/STORE/NAME/``: the folder TF.js resolves weight paths in."""
    return f"{request.base_url}v1/models/{quote(store, safe='')}/{quote(name, safe='/~')}/"
