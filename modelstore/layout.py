"""Where a model's pieces live in a backend, and which model names are allowed.

    NAME/~v/VID/PATH                     weight files of version VID, immutable
    NAME/~v/VID/~view/OPTS/FILE          weight files of a derived view (modelstore.views)
    NAME/~v/VID/~view/OPTS.view          the view's record and model.json; writing it commits
    NAME/~v/VID/~view/OPTS.making        when a derivation of the view began (gc's clock)
    ~models/NAME/~VID.version            the version: record, served model.json, original
                                         model.json (modelstore.records); writing it commits
    ~heads/NAME/~head                    the current version's record and served model.json:
                                         a load of the current version is one read
    NAME/model.json                      the current model.json, weight paths at ~v/VID/, on
                                         stores of plain files or objects (static serving)
    ~schema                              the layout's schema number, once older data is indexed
    ~aliases/NAME/~ALIAS                 an alias: the version id it points to (modelstore.aliases)
    ~models/NAME/~VID.next, ~create      claims of conditional saves (modelstore.claims)

Release 0.1.0 kept a version in three files, which still load (schema 1):

    ~models/NAME/~VID/model.json         model.json exactly as it was saved
    ~models/NAME/~VID/served.json        model.json as loaders get it (paths rewritten)
    ~models/NAME/~VID/record.json        the version record; writing it was the commit point

So a ``file`` or ``s3`` store can be served as-is by a static server: ``NAME/model.json``
loads with weight paths relative to it. Segments starting with ``~`` and the segment
``model.json`` are reserved, which keeps every key of one model apart from every other
model's keys and every HTTP route unambiguous.
"""

from __future__ import annotations

import re

from modelshelf.backends.errors import InvalidKeyError
from modelshelf.backends.keys import validate_key
from modelshelf.modelstore.errors import InvalidAliasError, InvalidModelError, InvalidNameError
from modelshelf.modelstore.version_ids import is_version_id

CATALOG = "~models"
HEADS = "~heads"
ALIASES = "~aliases"
HEAD_LEAF = "~head"
VERSION_SUFFIX = ".version"
SCHEMA_KEY = "~schema"
VERSIONS_SEGMENT = "~v"
VIEWS_SEGMENT = "~view"  # inside a version's folder, so removing the version removes them
VIEW_SUFFIX = ".view"
VIEW_MAKING_SUFFIX = ".making"
MODEL_JSON = "model.json"
RECORD_JSON = "record.json"
SERVED_JSON = "served.json"
RESERVED_PREFIX = "~"
# The routing grammar of a model name: segments, none starting with '~' or equal to
# model.json. Routes match with it and the OpenAPI document publishes it; validate_model_name
# adds what a pattern cannot say well (the key rules of backends.keys).
_NAME_SEGMENT = r"(?!~)(?!model\.json(?:/|$))[^/]+"
MODEL_NAME_PATTERN = f"{_NAME_SEGMENT}(?:/{_NAME_SEGMENT})*"


def validate_model_name(name: str) -> str:
    """Return ``name`` if a model may be called so, else raise InvalidNameError."""
    try:
        validate_key(name)
    except InvalidKeyError as error:
        raise InvalidNameError(f"invalid model name: {_reason(error)}") from None
    for segment in name.split("/"):
        if segment.startswith(RESERVED_PREFIX):
            raise InvalidNameError(
                f"invalid model name {name!r}: segments starting with '~' are reserved "
                f"for version files"
            )
        if segment == MODEL_JSON:
            raise InvalidNameError(
                f"invalid model name {name!r}: 'model.json' is reserved for the model file"
            )
    return name


# Every version id has this length (modelstore.version_ids), so key lengths are known early.
SAMPLE_VERSION_ID = "20261126T003136123456Z-1a2b3c4d"
CATALOG_FILES = (MODEL_JSON, RECORD_JSON, SERVED_JSON)


def check_key_room(name: str, max_key_bytes: int) -> None:
    """Refuse a name whose internal keys would not fit the backend (before any byte is stored)."""
    keys = [version_key(name, SAMPLE_VERSION_ID), head_key(name), published_model_json_key(name)]
    longest = max(keys, key=_key_bytes)
    spare = max_key_bytes - _key_bytes(longest)
    if spare < 0:
        raise InvalidNameError(
            f"the model name is too long for this store by {-spare} bytes (UTF-8): its "
            f"internal keys must fit in {max_key_bytes} bytes; shorten the name"
        )


def check_weight_key_room(name: str, path: str, max_key_bytes: int) -> None:
    """Refuse a weight path that, under this name, would make a key the backend cannot hold."""
    key = weight_file_key(name, SAMPLE_VERSION_ID, path)
    if _key_bytes(key) > max_key_bytes:
        raise InvalidModelError(
            f"weight path {path!r} is too long for a model of this name in this store "
            f"({_key_bytes(key) - max_key_bytes} bytes over); shorten the path or the name"
        )


def _key_bytes(key: str) -> int:
    return len(key.encode("utf-8", "surrogatepass"))


def published_model_json_key(name: str) -> str:
    return f"{name}/{MODEL_JSON}"


def weight_file_prefix(name: str, version_id: str) -> str:
    """The folder of a version's weight files, relative to ``NAME/``."""
    return f"{VERSIONS_SEGMENT}/{version_id}/"


def weight_file_key(name: str, version_id: str, path: str) -> str:
    return f"{name}/{weight_file_prefix(name, version_id)}{path}"


def view_file_path(segment: str, file_name: str) -> str:
    """A view's weight file as a version's weight path: ``~view/OPTS/FILE``."""
    return f"{VIEWS_SEGMENT}/{segment}/{file_name}"


def view_record_key(name: str, version_id: str, segment: str) -> str:
    return f"{version_folder(name, version_id)}{VIEWS_SEGMENT}/{segment}{VIEW_SUFFIX}"


def view_marker_key(name: str, version_id: str, segment: str) -> str:
    return f"{version_folder(name, version_id)}{VIEWS_SEGMENT}/{segment}{VIEW_MAKING_SUFFIX}"


def parse_view_key(key: str) -> tuple[str, str, str, str] | None:
    """A key of a view -> (NAME, VID, OPTS, what): what is a file name, ``.view`` (the
    record) or ``.making`` (the marker); None for any other key."""
    owner = parse_weight_file_key(key)
    if owner is None:
        return None
    rest = key[len(views_folder(*owner)) :]
    if not key.startswith(views_folder(*owner)) or not rest:
        return None
    segment, slash, file_name = rest.partition("/")
    if slash:
        return (*owner, segment, file_name) if file_name else None
    for suffix in (VIEW_SUFFIX, VIEW_MAKING_SUFFIX):
        if segment.endswith(suffix) and len(segment) > len(suffix):
            return (*owner, segment[: -len(suffix)], suffix)
    return None


def views_folder(name: str, version_id: str) -> str:
    return f"{version_folder(name, version_id)}{VIEWS_SEGMENT}/"


def version_folder(name: str, version_id: str) -> str:
    return f"{name}/{VERSIONS_SEGMENT}/{version_id}/"


def catalog_prefix(name: str) -> str:
    """Prefix of every catalog key of one model (its records and original model.json)."""
    return f"{CATALOG}/{name}/{RESERVED_PREFIX}"


def original_model_json_key(name: str, version_id: str) -> str:
    return f"{catalog_prefix(name)}{version_id}/{MODEL_JSON}"


def served_model_json_key(name: str, version_id: str) -> str:
    """model.json as served: the original with weight paths pointing at ``~v/VID/``."""
    return f"{catalog_prefix(name)}{version_id}/{SERVED_JSON}"


def record_key(name: str, version_id: str) -> str:
    """Schema 1: the record of a version saved by release 0.1.0."""
    return f"{catalog_prefix(name)}{version_id}/{RECORD_JSON}"


def version_key(name: str, version_id: str) -> str:
    """Schema 2: the one object of a version (see modelstore.records)."""
    return f"{catalog_prefix(name)}{version_id}{VERSION_SUFFIX}"


# Aliases start with a letter; version ids (modelstore.version_ids) with a digit.
ALIAS_PATTERN = r"[a-z][a-z0-9._-]{0,62}"
_ALIAS = re.compile(ALIAS_PATTERN)


def validate_alias(alias: str) -> str:
    """Return ``alias`` if it may name an alias, else raise InvalidAliasError."""
    if _ALIAS.fullmatch(alias) is None:
        raise InvalidAliasError(
            f"invalid alias {alias!r}: use a lowercase letter, then up to 62 of a-z, 0-9, "
            f"'.', '_' or '-' (e.g. 'prod', 'v2.1-rc')"
        )
    return alias


def alias_prefix(name: str) -> str:
    return f"{ALIASES}/{name}/{RESERVED_PREFIX}"


def alias_key(name: str, alias: str) -> str:
    return f"{alias_prefix(name)}{alias}"


def successor_claim_key(name: str, version_id: str) -> str:
    """Taken by the one conditional save (If-Match) allowed to succeed ``version_id``."""
    return f"{catalog_prefix(name)}{version_id}.next"


def creation_claim_key(name: str) -> str:
    """Taken by the one conditional save (If-None-Match: *) allowed to create the model."""
    return f"{catalog_prefix(name)}create"


def head_key(name: str) -> str:
    return f"{HEADS}/{name}/{HEAD_LEAF}"


def parse_head_key(key: str) -> str | None:
    """``~heads/NAME/~head`` -> NAME; None for any other key."""
    head, _, tail = key.partition("/")
    suffix = "/" + HEAD_LEAF
    if head != HEADS or not tail.endswith(suffix) or len(tail) == len(suffix):
        return None
    return tail[: -len(suffix)]


def parse_version_key(key: str) -> tuple[str, str] | None:
    """A version's commit key (either schema) -> (NAME, VID); None for any other key."""
    if key.endswith(VERSION_SUFFIX):
        head, _, tail = key.partition("/")
        name, _, segment = tail[: -len(VERSION_SUFFIX)].rpartition("/")
        if head == CATALOG and name and segment.startswith(RESERVED_PREFIX):
            return name, segment[len(RESERVED_PREFIX) :]
        return None
    return parse_record_key(key)


def parse_record_key(key: str) -> tuple[str, str] | None:
    """``~models/NAME/~VID/record.json`` -> (NAME, VID); None for any other key."""
    head, _, tail = key.partition("/")
    if head != CATALOG or not tail.endswith("/" + RECORD_JSON):
        return None
    name, _, version_segment = tail[: -len(RECORD_JSON) - 1].rpartition("/")
    if not name or not version_segment.startswith(RESERVED_PREFIX):
        return None
    return name, version_segment[len(RESERVED_PREFIX) :]


def parse_weight_file_key(key: str) -> tuple[str, str] | None:
    """``NAME/~v/VID/PATH`` -> (NAME, VID); None for any other key.

    No segment of a name starts with '~', so the first ``/~v/`` ends the name.
    """
    name, marker, rest = key.partition(f"/{VERSIONS_SEGMENT}/")
    version_id, slash, path = rest.partition("/")
    if not marker or not slash or not path or not is_version_id(version_id):
        return None
    return (name, version_id) if _is_model_name(name) else None


def parse_schema_1_file_key(key: str) -> tuple[str, str] | None:
    """``~models/NAME/~VID/model.json`` or ``served.json`` -> (NAME, VID); None otherwise.

    The files a release 0.1.0 save wrote before its record.json, the commit point.
    """
    head, _, tail = key.partition("/")
    folder, _, leaf = tail.rpartition("/")
    name, _, version_segment = folder.rpartition("/")
    version_id = version_segment.removeprefix(RESERVED_PREFIX)
    if head != CATALOG or leaf not in (MODEL_JSON, SERVED_JSON) or version_id == version_segment:
        return None
    return (name, version_id) if is_version_id(version_id) and _is_model_name(name) else None


def schema_1_folder(name: str, version_id: str) -> str:
    """Schema 1: the catalog folder of one version (model.json, served.json, record.json)."""
    return f"{catalog_prefix(name)}{version_id}/"


def _is_model_name(name: str) -> bool:
    try:
        validate_model_name(name)
    except InvalidNameError:
        return False
    return True


def _reason(error: InvalidKeyError) -> str:
    return str(error).replace("invalid key", "").strip()
