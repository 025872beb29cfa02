"""The ``modelname`` path convertor that keeps every route unambiguous.

A model name is one or more ``/``-separated segments, none starting with ``~`` and none
equal to ``model.json``: so ``NAME/model.json`` and ``NAME/~v/VERSION/FILE`` can never be
read as another model's name (see modelstore.layout).
"""

from __future__ import annotations

from starlette.convertors import Convertor, register_url_convertor

_SEGMENT = r"(?!~)(?!model\.json(?:/|$))[^/]+"


class ModelNameConvertor(Convertor[str]):
    regex = f"{_SEGMENT}(?:/{_SEGMENT})*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


# Routes compile their paths at definition time, so the convertor must exist first.
register_url_convertor("modelname", ModelNameConvertor())
