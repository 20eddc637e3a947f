"""Two "replicas" of shared state for health tests: one in-process store, or two clients of the real Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from podium.state import MemoryStateStore, RedisStateStore, StateStore
from tests.services import REDIS_URL, require_redis
from tests.state.stores import drop_prefix


@pytest.fixture(params=["memory", "redis"])
async def stores(request: pytest.FixtureRequest) -> AsyncIterator[tuple[StateStore, StateStore]]:
    """The state store as two replicas see it (a unique key prefix per test on Redis)."""
    prefix = f"podium-health-test:{uuid.uuid4().hex}:"
    if request.param == "memory":
        shared = MemoryStateStore(prefix)
        yield shared, shared
        return
    require_redis()
    a, b = RedisStateStore.from_url(REDIS_URL, prefix), RedisStateStore.from_url(REDIS_URL, prefix)
    try:
        yield a, b
    finally:
        await a.aclose()
        await b.aclose()
        await drop_prefix(prefix)
