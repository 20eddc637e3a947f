"""State-store fixtures shared by the state, limits and costs tests: memory and the real Redis."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from podium.state import MemoryStateStore, RedisStateStore, StateStore

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_reachable() -> bool:
    """Whether the loopback Redis answers."""
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


def require_redis() -> None:
    """Fail under CI, skip elsewhere, when Redis is down."""
    if not redis_reachable():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("Redis at 127.0.0.1:6379 is required under CI")
        pytest.skip("Redis at 127.0.0.1:6379 is not reachable")


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
