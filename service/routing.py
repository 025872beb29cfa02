"""The ``modelname`` path convertor that keeps every route unambiguous.

A model name is one or more ``/``-separated segments, none starting with ``~`` and none
equal to ``model.json``: so ``NAME/model.json`` and ``NAME/~v/VERSION/FILE`` can never be
read as another model's name (see modelstore.layout).
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.convertors import Convertor, register_url_convertor
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

from modelshelf.modelstore.layout import MODEL_NAME_PATTERN

PROBED_METHODS = ("GET", "POST", "PUT", "DELETE")
FALLBACK_ROUTE_NAME = "unmatched_model_path"


class ModelNameConvertor(Convertor[str]):
    regex = MODEL_NAME_PATTERN

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


# Routes compile their paths at definition time, so the convertor must exist first.
register_url_convertor("modelname", ModelNameConvertor())


def allowed_methods(routes: Sequence[BaseRoute], scope: Scope) -> list[str]:
    """Every method some documented route serves at this request's path (for ``Allow``)."""
    return [
        method
        for method in PROBED_METHODS
        if any(_serves(route, {**scope, "method": method}) for route in routes)
    ]


def _serves(route: BaseRoute, scope: Scope) -> bool:
    if getattr(route, "name", None) == FALLBACK_ROUTE_NAME:
        return False
    match, _child_scope = route.matches(scope)
    return match == Match.FULL
