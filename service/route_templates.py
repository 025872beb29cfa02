"""Which route a request is for, as the route's path template: the label metrics and logs use.

The template (``/v1/models/{store}/{name}/model.json``), never the raw path, so a label has
as many values as the app has routes. A request is matched as the router would match it,
before any middleware runs, so refusals (guards, tokens, CORS preflights) get their route too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import routing
from starlette.routing import BaseRoute

UNMATCHED = "unmatched"  # the label of a path no route serves


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """A request's route: its template, its OpenAPI operation id, and its path parameters."""

    template: str
    operation: str | None = None
    path_params: dict[str, str] | None = None

    def param(self, name: str) -> str | None:
        return (self.path_params or {}).get(name)


NO_ROUTE = RouteMatch(UNMATCHED)


@dataclass(frozen=True, slots=True)
class _Template:
    path_regex: re.Pattern[str]
    path_format: str
    operation: str | None
    methods: frozenset[str] | None

    @classmethod
    def of(cls, route: Any) -> _Template:
        """A Route, Mount or FastAPI route context, read once (its attributes are lookups)."""
        methods = getattr(route, "methods", None)
        return cls(
            route.path_regex,
            route.path_format,
            getattr(route, "operation_id", None),
            frozenset(methods) if methods else None,
        )

    def match(self, path: str) -> RouteMatch | None:
        found = self.path_regex.match(path)
        if found is None:
            return None
        return RouteMatch(self.path_format, self.operation, found.groupdict())


class RouteTemplates:
    """Matches requests against an app's routes, flattened once on first use."""

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        self._routes = routes
        self._templates: list[_Template] | None = None

    def match(self, method: str, path: str) -> RouteMatch:
        """The first route that serves ``method`` at ``path``; else the first with the path."""
        other_method: RouteMatch | None = None
        for template in self._flattened():
            found = template.match(path)
            if found is None:
                continue
            if template.methods is None or method in template.methods:
                return found
            other_method = other_method or found
        return other_method or NO_ROUTE

    def _flattened(self) -> list[_Template]:
        # Routes are all added by the time the first request arrives, not when this is built.
        if self._templates is None:
            self._templates = [
                _Template.of(route)
                for route in _route_contexts(self._routes)
                if getattr(route, "path_regex", None) is not None
            ]
        return self._templates


def _route_contexts(routes: Sequence[BaseRoute]) -> Iterable[Any]:
    # Newer FastAPI keeps included routers nested (iter_route_contexts flattens them); older
    # releases copy their routes into the app flat.
    flatten = getattr(routing, "iter_route_contexts", None)
    return list(flatten(routes)) if flatten is not None else list(routes)
