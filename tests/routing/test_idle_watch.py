"""The stream idle timer: one per stream, re-armed lazily, cancelling whichever task waits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from podium.backend import CallContext
from podium.errors import ProviderTimeout
from podium.routing.deadline import IdleWatch
from podium.types import ChatChunk


async def _chunks(gaps: list[float]) -> AsyncIterator[ChatChunk]:
    for i, gap in enumerate(gaps):
        await asyncio.sleep(gap)
        yield ChatChunk(delta=str(i))


async def test_a_steady_stream_longer_than_the_idle_timeout_is_not_cut() -> None:
    watch = IdleWatch(0.2, CallContext(), "up")
    agen = _chunks([0.05] * 10)  # 0.5 s in all, never 0.2 s without a chunk
    got = [(await watch.next(agen)).delta for _ in range(10)]
    with pytest.raises(StopAsyncIteration):
        await watch.next(agen)
    watch.close()
    assert got == [str(i) for i in range(10)]


async def test_a_gap_is_a_provider_timeout_and_leaves_the_task_usable() -> None:
    watch = IdleWatch(0.1, CallContext(), "up")
    agen = _chunks([0.0, 0.5])
    assert (await watch.next(agen)).delta == "0"
    with pytest.raises(ProviderTimeout, match=r"up: no stream data within 0\.1 s"):
        await watch.next(agen)
    watch.close()
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
    await asyncio.sleep(0.01)  # not cancelled by a leftover request


async def test_the_deadline_bounds_the_wait_and_another_task_may_read_on() -> None:
    ctx = CallContext()
    ctx.deadline = time.monotonic() + 0.15
    watch = IdleWatch(10.0, ctx, "up")
    agen = _chunks([0.0, 0.0, 1.0])
    assert (await watch.next(agen)).delta == "0"
    second = await asyncio.create_task(watch.next(agen))  # a writer task continues the stream
    assert second.delta == "1"
    with pytest.raises(ProviderTimeout, match="before the deadline"):
        await asyncio.create_task(watch.next(agen))
    watch.close()


async def test_a_cancellation_from_outside_stays_a_cancellation() -> None:
    watch = IdleWatch(10.0, CallContext(), "up")
    agen = _chunks([5.0])
    reader = asyncio.create_task(watch.next(agen))
    await asyncio.sleep(0.05)
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    watch.close()
