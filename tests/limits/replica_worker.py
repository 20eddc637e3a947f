"""One podium replica for the cross-process tests: shares the real Redis, prints what it saw as JSON.

Usage: python -m tests.limits.replica_worker <mode> <redis url> <prefix> <start at> <args...> <seed>
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time

from podium.errors import BudgetExceeded, RateLimitExceeded
from podium.limits.estimate import RequestEstimate
from podium.limits.governance import Governance
from podium.state import RedisStateStore
from podium.types import Usage


async def rate(gov: Governance, limit: int, attempts: int) -> list[float]:
    gov.set_rate_limit("tenant-x", {"requestsPerMinute": limit}, "tenant")
    out = []
    for _ in range(attempts):
        try:
            await gov.guard.admit("tenant-x", None, None, RequestEstimate(1))
            out.append(0.0)
        except RateLimitExceeded as exc:
            out.append(exc.retry_after)
    return out


async def budget(gov: Governance, limit: float, requests: int, seed: int) -> list[int | None]:
    gov.set_budget("tenant-b", daily=limit, enforce_hard_limit=True)
    gov.pricing.set_provider("p", prices={"input": 1.0, "output": 2.0})
    rng = random.Random(seed)

    async def one() -> int | None:
        try:
            ticket = await gov.guard.admit("tenant-b", None, "p", RequestEstimate(1000, 1000, "m"))
        except BudgetExceeded:
            return None
        await asyncio.sleep(rng.random() * 0.05)
        completion = rng.randrange(0, 1001)
        settled = await gov.guard.settle(ticket, Usage(1000, completion, 1000 + completion))
        return settled.cost_nanos

    return list(await asyncio.gather(*(one() for _ in range(requests))))


async def main(mode: str, url: str, prefix: str, start_at: float, args: list[str]) -> None:
    store = RedisStateStore.from_url(url, prefix)
    gov = Governance(store)
    await store.get("warm-up")  # connect before the start line, so both replicas start together
    await asyncio.sleep(max(0.0, start_at - time.time()))
    if mode == "rate":
        result: list[float] | list[int | None] = await rate(gov, int(args[0]), int(args[1]))
    else:
        result = await budget(gov, float(args[0]), int(args[1]), int(args[2]))
    await gov.aclose()
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5:]))
