"""Put modes over every backend (create-only, replace-if-etag), gated by declared capabilities.

The same suite as test_backend_contract: one set of tests, run over memory, file, SQLite and a
real SeaweedFS S3 server (``[s3]`` ids), never by ``isinstance``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from modelshelf.backends import (
    Backend,
    CreateOnly,
    PreconditionFailedError,
    ReplaceIfEtag,
)
from modelshelf.backends.ops import iter_keys, put_bytes, read_all

MULTIPART_BYTES = 12 << 20  # over the S3 backend's part size: a multipart upload


def _needs(backend: Backend, *capabilities: str) -> None:
    missing = [name for name in capabilities if not getattr(backend.capabilities, name)]
    if missing:
        pytest.skip(f"the backend does not declare {', '.join(missing)}")


async def _keys(backend: Backend) -> list[str]:
    return [item.key async for item in iter_keys(backend)]


async def test_create_only_stores_an_absent_key_and_refuses_a_present_one(
    backend: Backend,
) -> None:
    _needs(backend, "put_create")
    created = await put_bytes(backend, "m/head", b"first", CreateOnly())
    assert created.size == 5
    with pytest.raises(PreconditionFailedError):
        await put_bytes(backend, "m/head", b"second", CreateOnly())
    assert await read_all(backend, "m/head") == b"first"
    assert await _keys(backend) == ["m/head"]  # no temp file, blob or upload shows


async def test_replace_if_etag_replaces_only_the_value_it_read(backend: Backend) -> None:
    _needs(backend, "put_replace_if_etag")
    first = await put_bytes(backend, "m/head", b"one")
    second = await put_bytes(backend, "m/head", b"two", ReplaceIfEtag(first.etag))
    assert await read_all(backend, "m/head") == b"two"
    assert (await backend.head("m/head")).etag == second.etag
    with pytest.raises(PreconditionFailedError):  # first.etag is stale now
        await put_bytes(backend, "m/head", b"three", ReplaceIfEtag(first.etag))
    assert await read_all(backend, "m/head") == b"two"


async def test_replace_if_etag_refuses_an_absent_key(backend: Backend) -> None:
    _needs(backend, "put_replace_if_etag")
    with pytest.raises(PreconditionFailedError):
        await put_bytes(backend, "absent", b"x", ReplaceIfEtag("anything"))
    assert await _keys(backend) == []


async def test_a_refused_large_conditional_put_leaves_the_value_and_nothing_else(
    backend: Backend,
) -> None:
    _needs(backend, "put_create", "put_replace_if_etag")
    kept = await put_bytes(backend, "big", b"kept")
    large = bytes(MULTIPART_BYTES)
    with pytest.raises(PreconditionFailedError):
        await put_bytes(backend, "big", large, CreateOnly())
    with pytest.raises(PreconditionFailedError):
        await put_bytes(backend, "big", large, ReplaceIfEtag(kept.etag + "0"))
    assert await read_all(backend, "big") == b"kept"
    assert await _keys(backend) == ["big"]
    replaced = await put_bytes(backend, "big", large, ReplaceIfEtag(kept.etag))
    assert replaced.size == MULTIPART_BYTES == (await backend.head("big")).size


@pytest.mark.parametrize("mode", ["create", "replace"])
async def test_of_concurrent_conditional_puts_exactly_one_wins(backend: Backend, mode: str) -> None:
    _needs(backend, "put_create", "put_replace_if_etag")
    condition: CreateOnly | ReplaceIfEtag = CreateOnly()
    if mode == "replace":
        condition = ReplaceIfEtag((await put_bytes(backend, "race", b"start")).etag)
    contenders = [f"contender {n}".encode() for n in range(8)]
    results = await asyncio.gather(
        *(put_bytes(backend, "race", data, condition) for data in contenders),
        return_exceptions=True,
    )
    winners = [
        data
        for data, result in zip(contenders, results, strict=True)
        if not isinstance(result, BaseException)
    ]
    losers = [result for result in results if isinstance(result, BaseException)]
    assert len(winners) == 1, results
    assert all(isinstance(loser, PreconditionFailedError) for loser in losers), losers
    assert await read_all(backend, "race") == winners[0]


async def test_a_conditional_put_whose_source_fails_leaves_nothing(backend: Backend) -> None:
    _needs(backend, "put_create")

    async def failing() -> AsyncIterator[bytes]:
        yield b"partial"
        raise RuntimeError("the upload broke")

    with pytest.raises(RuntimeError):
        await backend.put("broken", failing(), CreateOnly())
    assert await _keys(backend) == []
    await put_bytes(backend, "broken", b"whole", CreateOnly())  # the key is still free
    assert await read_all(backend, "broken") == b"whole"
