"""Gateway CPU per Redis script call: redis-py's asyncio client against podium's pipe.

    python benchmarks/redis_calls.py [REDIS_URL] [N]

Runs the settlement a governed request commits (two budgets, the ledger's hashes) N times one after
another, then N times from 64 concurrent callers, through each client, on uvloop as ``podium serve``
runs, and prints the process CPU time per call. Keys live under a fresh prefix and are deleted after.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import uvloop
from redis.asyncio import Redis

from podium.costs.ledger import Ledger
from podium.state import BudgetSettle, RedisStateStore
from podium.types import Usage


async def _per_call(call: Callable[[], Awaitable[object]], n: int, concurrency: int) -> float:
    async def worker(k: int) -> None:
        for _ in range(k):
            await call()

    each = n // concurrency
    t0 = time.process_time()
    await asyncio.gather(*(worker(each) for _ in range(concurrency)))
    return (time.process_time() - t0) / (each * concurrency) * 1e6


async def main(url: str, n: int) -> None:
    """Print CPU µs per commit for both clients at concurrency 1 and 64."""
    prefix = f"podium-bench-calls-{uuid.uuid4().hex[:8]}:"
    store = RedisStateStore.from_url(url, prefix)
    ledger = Ledger(store)
    now = datetime.now(UTC)
    usage = Usage(prompt_tokens=12, completion_tokens=20, total_tokens=32)
    ops = [
        BudgetSettle("budget:d", release=100, charge=90, ttl=86400, flag_ttl=86400, thresholds=()),
        BudgetSettle("budget:m", release=100, charge=90, ttl=86400, flag_ttl=86400, thresholds=()),
        *ledger.ops("default", "fake", "fake-gpt", usage, 90, now),
    ]
    # The store's own argument builder and script, so both clients send exactly what podium sends.
    keys, args = store._commit_args(ops)
    script = store._commit
    pipe = store._pipe
    assert pipe is not None, "the URL's settings cannot be copied into the pipe"

    async def redis_py() -> object:
        return await script(keys=keys, args=args)

    async def piped() -> object:
        return await pipe.evalsha(script.sha, script.script, keys, args)

    try:
        await redis_py()
        await piped()
        print(f"{len(keys)} keys, {len(args)} arguments per call, n={n}")
        for concurrency in (1, 64):
            a = await _per_call(redis_py, n, concurrency)
            b = await _per_call(piped, n, concurrency)
            print(f"concurrency {concurrency:>2}: redis-py {a:6.0f} us/call, pipe {b:5.0f} us/call")
    finally:
        await store.aclose()
        client = Redis.from_url(url)
        found = [k async for k in client.scan_iter(match=prefix + "*")]
        if found:
            await client.delete(*found)
        await client.aclose()


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else "redis://127.0.0.1:6379/0"
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    uvloop.run(main(target, count))
