"""State-store fixtures shared by the state, limits and costs tests: memory and the real Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from podium.state import MemoryStateStore, RedisStateStore, StateStore
from tests.services import REDIS_URL, redis_reachable, require_redis

__all__ = ["REDIS_URL", "redis_reachable", "require_redis"]


def unique_prefix() -> str:
    """A key prefix no other test uses."""
    return f"podium-test:{uuid.uuid4().hex}:"


async def drop_prefix(prefix: str) -> None:
    """Delete every key under ``prefix`` from the real Redis."""
    client = Redis.from_url(REDIS_URL)
    try:
        keys = [k async for k in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[StateStore]:
    """Each test runs once against the in-process store and once against the real Redis."""
    prefix = unique_prefix()
    if request.param == "memory":
        yield MemoryStateStore(prefix)
        return
    require_redis()
    redis_store = RedisStateStore.from_url(REDIS_URL, prefix)
    try:
        yield redis_store
    finally:
        await redis_store.aclose()
        await drop_prefix(prefix)
