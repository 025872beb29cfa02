"""``If-Match`` and ``If-None-Match`` on requests that change a pointer (an alias, the current
version): the header forms, turned into what the model layer takes (RFC 9110 §13.1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from modelshelf.schemas.errors import ErrorCode
from modelshelf.service.errors import HttpError


@dataclass(frozen=True, slots=True)
class Preconditions:
    if_match: str | None = None  # a version id, its quotes taken off
    if_none_match: bool = False  # If-None-Match: *


def preconditions(request: Request) -> Preconditions:
    """The request's conditions; raises 400 for forms this API does not take."""
    if_match = request.headers.get("if-match")
    if_none_match = request.headers.get("if-none-match")
    if if_match is not None and if_none_match is not None:
        raise _invalid("send If-Match or If-None-Match, not both")
    if if_none_match is not None:
        if if_none_match.strip() != "*":
            raise _invalid("If-None-Match takes only '*' here (create only)")
        return Preconditions(if_none_match=True)
    if if_match is None:
        return Preconditions()
    tag = if_match.strip().removeprefix("W/")
    if "," in tag or not (len(tag) > 2 and tag.startswith('"') and tag.endswith('"')):
        raise _invalid(
            'If-Match takes one quoted version id, e.g. If-Match: "20261126T...-1a2b3c4d"'
        )
    return Preconditions(if_match=tag[1:-1])


def precondition_parameters(if_match: str, if_none_match: str | None = None) -> list[Any]:
    """The OpenAPI header parameters of a route that takes these conditions."""
    parameters = [_header("If-Match", if_match, {"type": "string"})]
    if if_none_match is not None:
        parameters.append(
            _header("If-None-Match", if_none_match, {"type": "string", "enum": ["*"]})
        )
    return parameters


def _header(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": False,
        "description": description,
        "schema": schema,
    }


def _invalid(message: str) -> HttpError:
    return HttpError(ErrorCode.INVALID_REQUEST, message)
