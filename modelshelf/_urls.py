"""Model URLs as TF.js writes them (``indexeddb://my-model``) and their REST paths."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from modelshelf._exceptions import InvalidRequestError


@dataclass(frozen=True, slots=True)
class ModelURL:
    """``STORE://NAME``; ``NAME`` may hold ``/``, spaces and any printable Unicode."""

    store: str
    name: str

    @classmethod
    def parse(cls, url: str) -> ModelURL:
        store, separator, name = url.partition("://")
        if not separator or not store or not name or "/" in store:
            raise InvalidRequestError(
                f"{url!r} is not a model URL; write it as STORE://NAME, e.g. indexeddb://my-model"
            )
        return cls(store, name)

    def __str__(self) -> str:
        return f"{self.store}://{self.name}"

    @property
    def path(self) -> str:
        """``/v1/models/STORE/NAME``, percent-encoded."""
        return f"/v1/models/{quote(self.store, safe='')}/{quote(self.name, safe='/~')}"


def store_and_prefix(store_or_prefix_url: str) -> tuple[str, str]:
    """``indexeddb``, ``indexeddb://`` or ``indexeddb://team/`` -> (store, name prefix)."""
    store, _separator, prefix = store_or_prefix_url.partition("://")
    if not store or "/" in store:
        raise InvalidRequestError(
            f"{store_or_prefix_url!r} names no store; write STORE or STORE://PREFIX"
        )
    return store, prefix
