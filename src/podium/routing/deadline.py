"""Deadlines: no upstream attempt, and no stream, outlives the request's deadline.

Each attempt is bounded by the provider's own ``timeout`` and by what is left of the request's deadline;
a stream additionally by an idle timeout between two chunks. Enforced here, above the adapters, so it
holds for every provider (HTTP or in-process) whatever its transport does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

from podium._timeouts import Expired, within
from podium.backend import CallContext
from podium.errors import ProviderTimeout

T = TypeVar("T")


def attempt_timeout(provider_timeout: float, ctx: CallContext) -> float:
    """Seconds one attempt may take: the provider's timeout, cut to the request's remaining time."""
    left = ctx.remaining()
    return provider_timeout if left is None else min(provider_timeout, left)


async def bounded(awaitable: Awaitable[T], seconds: float, provider: str, what: str) -> T:
    """Await ``awaitable`` for at most ``seconds``; on expiry cancel it and raise ``ProviderTimeout``."""
    try:
        return await within(awaitable, seconds)
    except Expired as exc:
        raise ProviderTimeout(f"{provider}: {what} within {seconds:.3g} s", provider=provider) from exc


class IdleWatch:
    """Bounds each wait for a stream's next chunk by the idle timeout and the request's deadline.

    One timer per stream, not one ``asyncio.timeout`` per chunk: the timer is moved lazily (when it
    fires early it re-arms for the current wait's end), so a steady stream costs a clock read per
    chunk. Whichever task awaits the chunk is the one cancelled, so the stream may pass between tasks
    (a server reads the first chunk in the request's task and the rest in a writer task).

    Use as ``chunk = await watch.next(agen)``; close with :meth:`close`.

    Args:
        idle: Seconds allowed between two chunks.
        ctx: The call context (its deadline bounds every wait too).
        provider: Named in the timeout error.
    """

    def __init__(self, idle: float, ctx: CallContext, provider: str) -> None:
        self.idle = idle
        self.ctx = ctx
        self.provider = provider
        self._loop = asyncio.get_running_loop()
        self._handle: asyncio.TimerHandle | None = None
        self._until = 0.0
        self._waiter: asyncio.Task[object] | None = None
        self._expired = False

    async def next(self, chunks: AsyncIterator[T]) -> T:
        """The next item of ``chunks`` (a stream's next batch).

        Raises:
            StopAsyncIteration: the stream ended.
            ProviderTimeout: no chunk within the idle timeout, or the request's deadline passed.
        """
        left = self.ctx.remaining()
        wait = self.idle if left is None else min(self.idle, left)
        self._until = self._loop.time() + wait
        if self._handle is None:
            self._handle = self._loop.call_at(self._until, self._fire)
        self._waiter = asyncio.current_task(self._loop)  # with the loop: no get_running_loop per chunk
        try:
            return await chunks.__anext__()
        except asyncio.CancelledError:
            if not self._expired:
                raise
            self._expired = False
            if self._waiter is not None:
                self._waiter.uncancel()
            what = (
                "no stream data"
                if left is None or self.idle <= left
                else "stream not finished before the deadline"
            )
            raise ProviderTimeout(
                f"{self.provider}: {what} within {wait:.3g} s", provider=self.provider
            ) from None
        finally:
            self._waiter = None

    def _fire(self) -> None:
        self._handle = None
        if self._waiter is None:
            return  # between two waits: the next one arms the timer again
        if self._loop.time() < self._until:
            self._handle = self._loop.call_at(self._until, self._fire)  # a chunk came since: wait on
            return
        self._expired = True
        self._waiter.cancel()

    def close(self) -> None:
        """Drop the timer."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
