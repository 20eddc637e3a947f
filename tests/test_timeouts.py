"""``within``: the cancellation rules of ``asyncio.timeout`` for one awaitable."""

from __future__ import annotations

import asyncio

import pytest

from podium._timeouts import Expired, within


async def test_a_cancellation_the_awaited_code_swallows_is_taken_back() -> None:
    async def stubborn() -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            return "partial"  # ends normally instead of raising
        return "whole"

    assert await within(stubborn(), 0.01) == "partial"
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
    await asyncio.sleep(0.01)  # no cancellation left pending on the task


async def test_expiry_is_a_timeout_error_and_an_error_of_the_awaitable_passes_through() -> None:
    with pytest.raises(TimeoutError) as caught:
        await within(asyncio.sleep(10), 0.01)
    assert isinstance(caught.value, Expired)

    async def broken() -> None:
        raise TimeoutError("the awaitable's own")

    with pytest.raises(TimeoutError, match="the awaitable's own") as own:
        await within(broken(), 5.0)
    assert not isinstance(own.value, Expired)


async def test_a_nested_limit_that_ends_later_is_cut_by_the_enclosing_one() -> None:
    async def inner() -> None:
        await within(asyncio.sleep(10), 5.0)

    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(Expired, match=r"within 0\.05 s"):
        await within(inner(), 0.05)
    assert loop.time() - started < 2.0
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


async def test_a_nested_limit_that_ends_first_fires_on_its_own() -> None:
    async def inner() -> str:
        try:
            await within(asyncio.sleep(10), 0.02)
        except Expired as exc:
            return str(exc)
        return "slept"

    assert await within(inner(), 5.0) == "no result within 0.02 s"


async def test_a_task_started_inside_a_limit_keeps_its_own_limit() -> None:
    # The child inherits the parent's context, where the parent's (shorter) limit is held; the
    # parent's timer cancels the parent only, so the child must still time itself.
    child: asyncio.Task[None] | None = None

    async def spawn() -> None:
        nonlocal child
        child = asyncio.create_task(within(asyncio.sleep(10), 0.1))
        await asyncio.shield(child)

    with pytest.raises(Expired):
        await within(spawn(), 0.01)
    assert child is not None
    with pytest.raises(Expired, match=r"within 0\.1 s"):
        await asyncio.wait_for(child, 5.0)
