"""Model URLs as TF.js writes them (``indexeddb://my-model``) and their REST paths.

``load`` also takes a share link's URL (``http://HOST/v1/models/STORE/NAME/model.json?token=``),
read as TF.js reads any model.json URL: weight paths resolve against its folder and carry
its query string.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

from modelshelf._exceptions import InvalidRequestError

HTTP_SCHEMES = ("http", "https")
MODEL_JSON = "model.json"


@dataclass(frozen=True, slots=True)
class ModelURL:
    """``STORE://NAME``; ``NAME`` may hold ``/``, spaces and any printable Unicode."""

    store: str
    name: str

    @classmethod
    def parse(cls, url: str) -> ModelURL:
        store, separator, name = url.partition("://")
        if store in HTTP_SCHEMES:
            raise InvalidRequestError(
                f"{url!r} is an HTTP URL, not a model URL: write STORE://NAME, e.g. "
                f"indexeddb://my-model (only load and load_model_json read a share link's URL)"
            )
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


@dataclass(frozen=True, slots=True)
class LoadSource:
    """Where a load reads model.json and the weight files its manifest names.

    Attributes:
        folder: the path (or, for a share link, the absolute URL) that model.json and its
            weight paths resolve in; ends with ``/``.
        query: a share link's query string (its token, maybe a version), sent with model.json
            and copied onto every weight URL as TF.js does.
        shared: a share link, which carries its own token: the client's is never sent with it.
    """

    folder: str
    query: dict[str, str] = field(default_factory=dict)
    shared: bool = False

    @classmethod
    def parse(cls, url: str) -> LoadSource:
        """A model URL (``STORE://NAME``) or a share link's model.json URL.

        Raises InvalidRequestError for anything else.
        """
        if url.partition("://")[0] not in HTTP_SCHEMES:
            return cls(ModelURL.parse(url).path + "/")
        link = urlsplit(url)
        query = dict(parse_qsl(link.query))
        if not link.path.endswith(f"/{MODEL_JSON}") or "/v1/models/" not in link.path:
            raise InvalidRequestError(
                f"{url!r} is not a share link: it reads http://HOST/v1/models/STORE/NAME/"
                f"model.json?token=TOKEN, as `modelshelf share` prints it"
            )
        folder = link.path.removesuffix(MODEL_JSON)
        return cls(urlunsplit((link.scheme, link.netloc, folder, "", "")), query, shared=True)

    def model_json_query(
        self, version: str | None, view: dict[str, str] | None = None
    ) -> dict[str, str]:
        """The query of model.json: the link's, with ``version`` and the view's options (when
        given, see ``view_query``) replacing its own."""
        return {**self.query, **({"version": version} if version else {}), **(view or {})}


def view_query(quantize: str | None, shard_bytes: int | None) -> dict[str, str]:
    """The query that asks model.json for a view: ``quantize`` and ``shard_bytes`` as given.

    Only their types are checked here; the server alone judges the values (400
    ``invalid_view``, raised as InvalidRequestError), so the SDK never drifts from it.

    Raises:
        TypeError: ``quantize`` is not a string or ``shard_bytes`` not an int.
    """
    if quantize is not None and not isinstance(quantize, str):
        raise TypeError(f"quantize must be a string such as 'float16', not {quantize!r}")
    if shard_bytes is not None and (
        isinstance(shard_bytes, bool) or not isinstance(shard_bytes, int)
    ):
        raise TypeError(f"shard_bytes must be an int (bytes per weight file), not {shard_bytes!r}")
    query = {"quantize": quantize} if quantize is not None else {}
    return {**query, **({"shard_bytes": str(shard_bytes)} if shard_bytes is not None else {})}


def store_and_prefix(store_or_prefix_url: str) -> tuple[str, str]:
    """``indexeddb``, ``indexeddb://`` or ``indexeddb://team/`` -> (store, name prefix)."""
    store, _separator, prefix = store_or_prefix_url.partition("://")
    if not store or "/" in store:
        raise InvalidRequestError(
            f"{store_or_prefix_url!r} names no store; write STORE or STORE://PREFIX"
        )
    return store, prefix
