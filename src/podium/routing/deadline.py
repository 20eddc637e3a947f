"""Deadlines: no upstream attempt, and no stream, outlives the request's deadline.

Each attempt is bounded by the provider's own ``timeout`` and by what is left of the request's deadline;
a stream additionally by an idle timeout between two chunks. Enforced here, above the adapters, so it
holds for every provider (HTTP or in-process) whatever its transport does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

from podium.backend import CallContext
from podium.errors import ProviderTimeout
from podium.types import ChatChunk

T = TypeVar("T")


def attempt_timeout(provider_timeout: float, ctx: CallContext) -> float:
    """Seconds one attempt may take: the provider's timeout, cut to the request's remaining time."""
    left = ctx.remaining()
    return provider_timeout if left is None else min(provider_timeout, left)


async def bounded(awaitable: Awaitable[T], seconds: float, provider: str, what: str) -> T:
    """Await ``awaitable`` for at most ``seconds``; on expiry cancel it and raise ``ProviderTimeout``."""
    cm = asyncio.timeout(seconds)
    try:
        async with cm:
            return await awaitable
    except TimeoutError as exc:
        if not cm.expired():
            raise
        raise ProviderTimeout(f"{provider}: {what} within {seconds:.3g} s", provider=provider) from exc


async def with_idle_timeout(
    chunks: AsyncIterator[ChatChunk], idle: float, ctx: CallContext, provider: str
) -> AsyncIterator[ChatChunk]:
    """Yield ``chunks``; ``ProviderTimeout`` after ``idle`` seconds without one, or at the deadline."""
    while True:
        left = ctx.remaining()
        wait = idle if left is None else min(idle, left)
        what = "no stream data" if left is None or idle <= left else "stream not finished before the deadline"
        try:
            chunk = await bounded(anext(chunks), wait, provider, what)
        except StopAsyncIteration:
            return
        yield chunk
