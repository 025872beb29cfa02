"""The process-wide budget for upload buffers (issue 8, item 7): the budget alone, then the
backends that gather writes (S3 parts, SQLite batches) under a small one."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from modelshelf.backends import Backend, BufferBudget, CallLimits, open_backend
from modelshelf.backends.buffers import gathered
from modelshelf.backends.ops import read_all
from modelshelf.service.app import open_shelf
from modelshelf.service.settings import Settings
from tests.conftest import backend_url_for

MIB = 1 << 20
DEADLOCK_SECONDS = 60


async def chunks_of(data: bytes, size: int) -> AsyncIterator[bytes]:
    for offset in range(0, len(data), size):
        await asyncio.sleep(0)  # let the other uploads interleave, as sockets would
        yield data[offset : offset + size]


# -- the budget -----------------------------------------------------------------------------


async def test_concurrent_acquirers_never_exceed_the_budget() -> None:
    budget = BufferBudget(100)
    rng = random.Random(8)

    async def hold(size: int) -> None:
        taken = await budget.acquire(size)
        assert budget.in_use <= budget.capacity
        await asyncio.sleep(rng.random() / 1000)
        budget.release(taken)

    await asyncio.gather(*(hold(rng.randint(1, 60)) for _ in range(200)))
    assert budget.high_water <= 100
    assert budget.high_water > 60  # several held at once: the budget was shared
    assert budget.in_use == 0


async def test_waiters_proceed_in_arrival_order() -> None:
    budget = BufferBudget(10)
    first = await budget.acquire(10)
    granted: list[str] = []

    async def wait_for(name: str, size: int) -> None:
        taken = await budget.acquire(size)
        granted.append(name)
        await asyncio.sleep(0)
        budget.release(taken)

    tasks = [asyncio.create_task(wait_for(name, size)) for name, size in [("big", 8), ("s", 1)]]
    await asyncio.sleep(0)
    tasks.append(asyncio.create_task(wait_for("later", 1)))
    await asyncio.sleep(0)
    assert granted == []
    budget.release(first)
    await asyncio.gather(*tasks)
    # "s" fits beside "big", so both go at once; it never jumps ahead of "big", though.
    assert granted == ["big", "s", "later"]


async def test_a_small_waiter_does_not_overtake_a_big_one() -> None:
    budget = BufferBudget(10)
    held = await budget.acquire(5)
    big = asyncio.create_task(budget.acquire(10))
    await asyncio.sleep(0)
    small = asyncio.create_task(budget.acquire(1))  # would fit now, but "big" came first
    await asyncio.sleep(0)
    assert not big.done() and not small.done()
    budget.release(held)
    assert await big == 10
    assert not small.done()
    budget.release(10)
    assert await small == 1


async def test_cancelled_waiter_takes_nothing_and_lets_the_next_go() -> None:
    budget = BufferBudget(10)
    held = await budget.acquire(6)
    blocked = asyncio.create_task(budget.acquire(10))
    behind = asyncio.create_task(budget.acquire(4))
    await asyncio.sleep(0)
    blocked.cancel()
    with pytest.raises(asyncio.CancelledError):
        await blocked
    assert await behind == 4  # the head left, so the one behind it fits at once
    budget.release(4)
    budget.release(held)
    assert budget.in_use == 0


async def test_cancelled_just_after_the_grant_gives_it_back() -> None:
    budget = BufferBudget(10)
    held = await budget.acquire(10)
    waiter = asyncio.create_task(budget.acquire(10))
    await asyncio.sleep(0)
    budget.release(held)  # grants the waiter; its task has not run yet
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert budget.in_use == 0


async def test_a_buffer_bigger_than_the_budget_is_clamped_and_goes_alone() -> None:
    budget = BufferBudget(10)
    held = await budget.acquire(3)
    huge = asyncio.create_task(budget.acquire(1000))
    await asyncio.sleep(0)
    assert not huge.done()
    budget.release(held)
    assert await huge == 10
    assert budget.high_water == 10


# -- gathering chunks into budgeted blocks ----------------------------------------------------


async def test_gathered_blocks_mark_the_last_and_release_everything() -> None:
    budget = BufferBudget(16)
    data = bytes(range(50))
    blocks = [
        (bytes(block), last, budget.in_use)
        async for block, last in gathered(chunks_of(data, 7), 16, budget)
    ]
    assert [block for block, _, _ in blocks] == [data[0:16], data[16:32], data[32:48], data[48:]]
    assert [last for _, last, _ in blocks] == [False, False, False, True]
    assert all(in_use == 16 for _, _, in_use in blocks)  # each block is held while it is used
    assert budget.in_use == 0


async def test_gathered_empty_value_takes_nothing() -> None:
    budget = BufferBudget(16)
    blocks = [(bytes(block), last) async for block, last in gathered(chunks_of(b"", 4), 8, budget)]
    assert blocks == [(b"", True)]
    assert budget.high_water == 0


async def test_gathered_releases_when_the_consumer_fails_or_the_source_fails() -> None:
    budget = BufferBudget(16)
    blocks = gathered(chunks_of(b"x" * 40, 8), 16, budget)
    with pytest.raises(RuntimeError):
        async with contextlib.aclosing(blocks):
            async for _block, _last in blocks:
                raise RuntimeError("the write failed")
    assert budget.in_use == 0

    async def broken() -> AsyncIterator[bytes]:
        yield b"y" * 10
        raise ConnectionResetError("the client went away")

    with pytest.raises(ConnectionResetError):
        async for _block, _last in gathered(broken(), 16, budget):
            pass
    assert budget.in_use == 0


async def test_gathered_cancelled_while_waiting_for_the_budget_takes_nothing() -> None:
    budget = BufferBudget(16)
    held = await budget.acquire(16)

    async def consume() -> None:
        async for _block, _last in gathered(chunks_of(b"z" * 40, 8), 16, budget):
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.01)
    assert not task.done()  # waiting for the budget, before it fills anything
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    budget.release(held)
    assert budget.in_use == 0


# -- the backends that gather writes ----------------------------------------------------------

BUFFERED_KINDS = ["sqlite", pytest.param("s3", marks=pytest.mark.s3)]
BLOCK_BYTES = {"sqlite": 4 * MIB, "s3": 5 * MIB}  # sqlite.BATCH_BYTES, the S3 part_size below


async def open_with_budget(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, budget: BufferBudget
) -> Backend:
    url = backend_url_for(kind, tmp_path, request)
    if kind == "s3":
        url += f"&part_size={BLOCK_BYTES['s3']}"
    return open_backend(url, CallLimits(store=kind, write_buffers=budget))


@pytest.mark.parametrize("kind", BUFFERED_KINDS)
async def test_concurrent_puts_stay_within_the_budget(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    budget = BufferBudget(2 * BLOCK_BYTES[kind])
    backend = await open_with_budget(kind, tmp_path, request, budget)
    values = {f"v/{index}": os.urandom(2 * BLOCK_BYTES[kind] + 12345) for index in range(6)}
    try:
        puts = (backend.put(key, chunks_of(value, 256 * 1024)) for key, value in values.items())
        await asyncio.wait_for(asyncio.gather(*puts), DEADLOCK_SECONDS)
        for key, value in values.items():
            assert await read_all(backend, key) == value
    finally:
        await backend.close()
    assert budget.high_water == budget.capacity  # the budget was what held them back
    assert budget.in_use == 0


@pytest.mark.parametrize("kind", BUFFERED_KINDS)
async def test_a_budget_smaller_than_one_buffer_still_progresses(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    budget = BufferBudget(1 * MIB)
    backend = await open_with_budget(kind, tmp_path, request, budget)
    values = {f"w/{index}": os.urandom(BLOCK_BYTES[kind] + 99) for index in range(3)}
    try:
        puts = (backend.put(key, chunks_of(value, 300_000)) for key, value in values.items())
        await asyncio.wait_for(asyncio.gather(*puts), DEADLOCK_SECONDS)
        for key, value in values.items():
            assert await read_all(backend, key) == value
    finally:
        await backend.close()
    assert budget.high_water == budget.capacity
    assert budget.in_use == 0


@pytest.mark.parametrize("kind", BUFFERED_KINDS)
async def test_failed_and_cancelled_puts_give_their_buffers_back(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    budget = BufferBudget(BLOCK_BYTES[kind])
    backend = await open_with_budget(kind, tmp_path, request, budget)
    release_source = asyncio.Event()

    async def failing() -> AsyncIterator[bytes]:
        yield b"a" * (BLOCK_BYTES[kind] + 10)  # a full block is written, the next one held
        raise ConnectionResetError("the client went away")

    async def stalled() -> AsyncIterator[bytes]:
        yield b"b" * 1000
        await release_source.wait()
        yield b"c"

    try:
        with pytest.raises(ConnectionResetError):
            await backend.put("failed", failing())
        assert budget.in_use == 0
        holder = asyncio.create_task(backend.put("held", stalled()))
        await asyncio.sleep(0.2)
        assert budget.in_use == BLOCK_BYTES[kind]
        waiter = asyncio.create_task(backend.put("waiting", chunks_of(b"d" * 100, 10)))
        await asyncio.sleep(0.2)
        assert not waiter.done()  # waits for the budget the stalled put holds
        waiter.cancel()
        holder.cancel()
        for task in (waiter, holder):
            with pytest.raises(asyncio.CancelledError):
                await task
        assert budget.in_use == 0
        await asyncio.wait_for(backend.put("after", chunks_of(b"e" * 100, 10)), 30)
    finally:
        await backend.close()


async def test_every_store_of_a_server_takes_a_share_of_one_budget(tmp_path: Path) -> None:
    shelf = open_shelf(Settings(data_dir=tmp_path, upload_buffer_bytes=20 * MIB))
    try:
        shares = [store.backend.limits.write_buffers for store in shelf.stores.values()]  # type: ignore[attr-defined]
    finally:
        await shelf.close()
    assert len(shares) == 3 and len({id(share) for share in shares}) == 3
    assert len({id(share.within) for share in shares}) == 1
    assert shares[0].within.capacity == 20 * MIB
    assert all(share.capacity == 10 * MIB for share in shares)


async def test_a_stuck_store_holds_at_most_its_share() -> None:
    budget = BufferBudget(16)
    stuck, other = budget.share(), budget.share()
    assert await stuck.acquire(4) == 4
    held = await asyncio.wait_for(stuck.acquire(4), 1)  # kept until their calls time out
    third = asyncio.create_task(stuck.acquire(4))
    await asyncio.sleep(0)
    assert not third.done()  # over the stuck store's share: waits, holding nothing outside
    assert budget.in_use == 8
    assert await asyncio.wait_for(other.acquire(2), 1) == 2  # the other store still saves
    other.release(2)
    third.cancel()
    with pytest.raises(asyncio.CancelledError):
        await third
    stuck.release(held)
    stuck.release(4)
    assert budget.in_use == stuck.in_use == other.in_use == 0


async def test_a_share_waiting_for_the_outer_budget_gives_its_own_back_when_cancelled() -> None:
    budget = BufferBudget(10)
    first, second = budget.share(0.8), budget.share(0.8)
    held = await first.acquire(8)
    waiting = asyncio.create_task(second.acquire(8))
    await asyncio.sleep(0)
    assert second.in_use == 8 and budget.in_use == 8  # its share taken, the outer one not
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert second.in_use == 0
    first.release(held)
    assert budget.in_use == 0
