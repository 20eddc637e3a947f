"""Two OS processes sharing the real Redis enforce one rate limit and one budget exactly."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from podium.limits.governance import Governance
from podium.state import RedisStateStore
from tests.state.stores import REDIS_URL, drop_prefix, require_redis, unique_prefix

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    require_redis()
    value = unique_prefix()
    yield value
    await drop_prefix(value)


async def _replicas(mode: str, prefix: str, *args: object, count: int = 2) -> list[list[object]]:
    start_at = time.time() + 2.0  # both interpreters are up and connected by then
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.limits.replica_worker",
            mode,
            REDIS_URL,
            prefix,
            str(start_at),
            *(str(a) for a in (*args, i)),  # the last argument seeds each replica differently
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for i in range(count)
    ]
    results = []
    for proc in procs:
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
        results.append(json.loads(out))
    return results


async def test_a_tenant_limit_is_exact_across_two_processes(prefix: str) -> None:
    k = 12
    results = await _replicas("rate", prefix, k, 5 * k // 2)
    waits = [w for result in results for w in result]
    assert len(waits) == 5 * k
    assert sum(1 for w in waits if w == 0.0) == k
    assert all(w > 0 for w in waits if w != 0.0)


async def test_a_hard_budget_holds_under_64_concurrent_requests_in_two_processes(prefix: str) -> None:
    limit = 0.05
    reservation = 3_000_000  # 1000 prompt + 1000 output tokens at $1/$2 per million, in nano-dollars
    results = await _replicas("budget", prefix, limit, 32)
    costs = [c for result in results for c in result if c is not None]
    refused = [c for result in results for c in result if c is None]
    assert len(costs) + len(refused) == 64
    assert refused, "the budget must have refused some of the 64 requests"
    assert sum(costs) <= limit * 1e9 + reservation
    store = RedisStateStore.from_url(REDIS_URL, prefix)
    gov = Governance(store)
    gov.set_budget("tenant-b", daily=limit, enforce_hard_limit=True)
    try:
        status = await gov.get_budget_status("tenant-b")
        summary = await gov.get_cost_summary("tenant-b")
    finally:
        await store.aclose()
    assert status.periods[0].reserved == 0
    assert round(status.periods[0].spent * 1e9) == sum(costs)
    assert round(summary.total_cost * 1e9) == sum(costs)
    assert summary.requests == len(costs)
