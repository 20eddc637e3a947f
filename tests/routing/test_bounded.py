"""``bounded``: one upstream attempt under a time limit, with ``asyncio.timeout``'s cancellation rules."""

from __future__ import annotations

import asyncio

import pytest

from podium.errors import ProviderTimeout
from podium.routing.deadline import bounded


async def test_an_answer_in_time_is_returned_and_leaves_no_timer_behind() -> None:
    async def quick() -> str:
        await asyncio.sleep(0.001)
        return "answer"

    assert await bounded(quick(), 0.05, "gpt", "no answer") == "answer"
    await asyncio.sleep(0.1)  # past the limit: a timer left armed would cancel this sleep
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


async def test_a_slow_answer_is_cancelled_and_becomes_a_provider_timeout() -> None:
    cancelled = asyncio.Event()

    async def slow() -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "too late"

    with pytest.raises(ProviderTimeout, match=r"gpt: no answer within 0\.02 s") as caught:
        await bounded(slow(), 0.02, "gpt", "no answer")
    assert caught.value.provider == "gpt"
    assert cancelled.is_set()  # the upstream call was stopped, not left running
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
    await asyncio.sleep(0.01)  # the task goes on normally


async def test_a_cancellation_from_outside_stays_a_cancellation() -> None:
    async def caller() -> None:
        await bounded(asyncio.sleep(10), 5.0, "gpt", "no answer")

    task = asyncio.ensure_future(caller())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_an_outside_cancellation_arriving_with_the_timer_is_not_taken_for_a_timeout() -> None:
    loop = asyncio.get_running_loop()
    me = asyncio.current_task()
    assert me is not None
    upstream: asyncio.Future[str] = loop.create_future()
    # When the timer cancels the wait, an outside cancellation of this task lands before it resumes.
    upstream.add_done_callback(lambda _: me.cancel())
    with pytest.raises(asyncio.CancelledError):
        await bounded(upstream, 0.01, "gpt", "no answer")
    assert me.uncancel() == 0  # the outside cancellation was left counted, for its owner to see
