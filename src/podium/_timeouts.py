"""``within``: ``asyncio.timeout`` for one awaitable, at a third of its cost.

Every served request passes two time limits (the router's per attempt, the HTTP client's per
exchange). ``asyncio.timeout``'s context manager object, its two coroutines and its state handling
were about 6 % of a request's CPU in the profile of the in-process driver; here it is one timer handle
and a closure. The cancellation rules are ``asyncio.timeout``'s: an outside cancellation that meets
the timer stays a cancellation (``uncancel`` tells them apart), a cancellation the awaited code
swallowed is taken back, and the task can be cancelled and awaited normally after.

A limit nested in another of the same task that ends no later than its own sets no timer: the outer
one cancels the task first, so the inner could never fire. The router's attempt limit and the HTTP
client's exchange limit are such a pair on every request (both the provider's timeout, the inner
started later). Dropping that timer took about 1.5 % off a request's instructions
(``benchmarks/instructions.sh``), which is within those counts' noise of 1-2 %.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from contextvars import ContextVar
from typing import TypeVar

T = TypeVar("T")

# The task whose limit is innermost in this context, and the loop time that limit ends at. A task
# created inside inherits the value but is not that task, so it keeps its own timers.
_HELD: ContextVar[tuple[asyncio.Task[object], float] | None] = ContextVar("podium_within", default=None)


class Expired(TimeoutError):
    """The limit of :func:`within` ran out (its awaitable was cancelled)."""


async def within(awaitable: Awaitable[T], seconds: float) -> T:
    """Await ``awaitable`` for at most ``seconds``.

    Raises:
        Expired: the time ran out; the awaitable was cancelled.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.current_task(loop)
    assert task is not None
    until = loop.time() + seconds
    held = _HELD.get()
    if held is not None and held[0] is task and held[1] <= until:
        return await awaitable  # the enclosing limit ends first and raises its own Expired
    cancelling = task.cancelling()
    fired = False

    def expire() -> None:
        nonlocal fired
        fired = True
        task.cancel()

    timer = loop.call_at(until, expire)
    token = _HELD.set((task, until))
    try:
        result = await awaitable
    except BaseException as exc:
        # Ours when the timer fired and no other cancellation is pending on the task.
        if fired and task.uncancel() <= cancelling and isinstance(exc, asyncio.CancelledError):
            raise Expired(f"no result within {seconds:.3g} s") from exc
        raise
    finally:
        timer.cancel()
        _HELD.reset(token)
    if fired:
        task.uncancel()  # the awaited code swallowed the cancellation: take it back
    return result
