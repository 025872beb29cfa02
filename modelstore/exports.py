"""A stored version in the two-file layout ``tf.io.browserDownloads`` writes (protocol doc §8)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

from modelshelf.modelstore.errors import InvalidNameError
from modelshelf.modelstore.jsjson import compact_json
from modelshelf.modelstore.store import ModelStore
from modelshelf.schemas.versions import VersionInfo

_PREFIX = re.compile(r"[^/\\\x00-\x1f?#*:\"<>|]{1,200}")


def downloads_prefix(model_name: str, prefix: str | None) -> str:
    """The file prefix: given, or the model name's last segment (``demo/net`` -> ``net``)."""
    chosen = prefix or model_name.rsplit("/", 1)[-1]
    if not _PREFIX.fullmatch(chosen) or chosen in (".", ".."):
        raise InvalidNameError(
            f"export prefix {chosen!r} is not a file name; use letters, digits, '-', '_' or '.'"
        )
    return chosen


def downloads_model_json(original: bytes, prefix: str) -> bytes:
    """model.json with one group whose single path is ``./PREFIX.weights.bin``."""
    document = json.loads(original)
    groups = document.get("weightsManifest") or []
    weights = [entry for group in groups for entry in group.get("weights") or []]
    document["weightsManifest"] = [{"paths": [f"./{prefix}.weights.bin"], "weights": weights}]
    return compact_json(document)


async def joined_weights(
    store: ModelStore, model_name: str, version: VersionInfo
) -> AsyncIterator[bytes]:
    """Every weight file of a version, in manifest order, as one stream."""
    for stored in version.files:
        _info, stream = await store.open_weight_file(model_name, version.id, stored.path)
        try:
            async for chunk in stream:
                yield chunk
        finally:
            await stream.aclose()
