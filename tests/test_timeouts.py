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
