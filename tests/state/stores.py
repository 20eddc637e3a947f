"""State-store fixtures shared by the state, limits and costs tests: memory and the real Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

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


@asynccontextmanager
async def real_redis_store() -> AsyncIterator[RedisStateStore]:
    """A store on the real Redis under a prefix of its own, its keys deleted afterwards."""
    require_redis()
    prefix = unique_prefix()
    redis_store = RedisStateStore.from_url(REDIS_URL, prefix)
    try:
        yield redis_store
    finally:
        await redis_store.aclose()
        await drop_prefix(prefix)


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[StateStore]:
    """Each test runs once against the in-process store and once against the real Redis."""
    if request.param == "memory":
        yield MemoryStateStore(unique_prefix())
        return
    async with real_redis_store() as redis_store:
        yield redis_store
