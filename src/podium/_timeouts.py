"""``within``: ``asyncio.timeout`` for one awaitable, at a third of its cost.

Every served request passes two time limits (the router's per attempt, the HTTP client's per
exchange). ``asyncio.timeout``'s context manager object, its two coroutines and its state handling
were about 6 % of a request's CPU in the profile of the in-process driver; here it is one timer handle
and a closure. The cancellation rules are ``asyncio.timeout``'s: an outside cancellation that meets
the timer stays a cancellation (``uncancel`` tells them apart), a cancellation the awaited code
swallowed is taken back, and the task can be cancelled and awaited normally after.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


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
    cancelling = task.cancelling()
    fired = False

    def expire() -> None:
        nonlocal fired
        fired = True
        task.cancel()

    timer = loop.call_at(loop.time() + seconds, expire)
    try:
        result = await awaitable
    except BaseException as exc:
        # Ours when the timer fired and no other cancellation is pending on the task.
        if fired and task.uncancel() <= cancelling and isinstance(exc, asyncio.CancelledError):
            raise Expired(f"no result within {seconds:.3g} s") from exc
        raise
    finally:
        timer.cancel()
    if fired:
        task.uncancel()  # the awaited code swallowed the cancellation: take it back
    return result
