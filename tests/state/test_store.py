"""Both state stores behave the same: all-or-nothing reserve, settle, ledger hashes, primitives."""

from __future__ import annotations

import asyncio

import pytest

from podium.state import (
    BucketAdjust,
    BucketTake,
    BudgetReserve,
    BudgetSettle,
    HashIncr,
    RedisStateStore,
    SlotAcquire,
    SlotRelease,
    StateStore,
)
from tests.state.stores import REDIS_URL, drop_prefix, require_redis, unique_prefix


async def test_bucket_allows_its_capacity_then_says_when_to_retry(store: StateStore) -> None:
    take = BucketTake("b", capacity=3, rate=0.5, amount=1)
    results = [await store.reserve([take]) for _ in range(4)]
    assert [r.ok for r in results] == [True, True, True, False]
    assert results[2].levels[0].remaining == pytest.approx(0, abs=0.01)
    assert results[2].levels[0].reset == pytest.approx(6, abs=0.05)
    # One token refills in 2 s at 0.5/s (a few ms of refill already happened).
    assert 1.9 < results[3].retry_after <= 2.0
    assert results[3].failed == 0


async def test_reserve_takes_nothing_when_one_check_fails(store: StateStore) -> None:
    checks = [
        BucketTake("b", capacity=10, rate=1, amount=4),
        SlotAcquire("s", member="r1", limit=1, ttl=60),
        BudgetReserve("g", limit=100, amount=150, ttl=60),
    ]
    refused = await store.reserve(checks)
    assert not refused.ok
    assert refused.failed == 2
    (level,) = await store.buckets([("b", 10, 1)])
    assert level.tokens == pytest.approx(10)
    assert await store.slots(["s"]) == [0]
    (budget,) = await store.budgets(["g"])
    assert (budget.spent, budget.reserved) == (0, 0)


async def test_concurrency_slots_are_held_until_released(store: StateStore) -> None:
    assert (await store.reserve([SlotAcquire("s", "a", limit=2, ttl=60)])).ok
    assert (await store.reserve([SlotAcquire("s", "b", limit=2, ttl=60)])).ok
    third = await store.reserve([SlotAcquire("s", "c", limit=2, ttl=60)])
    assert not third.ok
    assert third.retry_after > 0
    await store.commit([SlotRelease("s", "a")])
    assert (await store.reserve([SlotAcquire("s", "c", limit=2, ttl=60)])).ok
    assert await store.slots(["s"]) == [2]


async def test_slots_of_a_dead_holder_expire(store: StateStore) -> None:
    assert (await store.reserve([SlotAcquire("s", "dead", limit=1, ttl=0.05)])).ok
    await asyncio.sleep(0.1)
    assert (await store.reserve([SlotAcquire("s", "alive", limit=1, ttl=60)])).ok


async def test_budget_reservation_becomes_spend_and_flags_once(store: StateStore) -> None:
    assert (await store.reserve([BudgetReserve("g", limit=1000, amount=600, ttl=60)])).ok
    refused = await store.reserve([BudgetReserve("g", limit=1000, amount=500, ttl=60)])
    assert not refused.ok
    assert (refused.spent, refused.reserved) == (0, 600)
    flags = (("f50", 500), ("f80", 800))
    first = await store.commit(
        [BudgetSettle("g", release=600, charge=550, ttl=60, thresholds=flags, flag_ttl=60)]
    )
    assert first.spent == {0: 550}
    assert first.flags == ("f50",)
    (state,) = await store.budgets(["g"])
    assert (state.spent, state.reserved) == (550, 0)
    second = await store.commit(
        [BudgetSettle("g", release=0, charge=300, ttl=60, thresholds=flags, flag_ttl=60)]
    )
    assert second.flags == ("f80",)
    # A soft budget (no limit) always reserves.
    assert (await store.reserve([BudgetReserve("g", limit=None, amount=10**12, ttl=60)])).ok


async def test_refund_and_debt_adjust_the_bucket(store: StateStore) -> None:
    assert (await store.reserve([BucketTake("t", capacity=100, rate=0.001, amount=80)])).ok
    await store.commit([BucketAdjust("t", capacity=100, rate=0.001, amount=50)])
    (level,) = await store.buckets([("t", 100, 0.001)])
    assert level.tokens == pytest.approx(70, abs=0.01)
    await store.commit([BucketAdjust("t", capacity=100, rate=0.001, amount=-90)])
    (level,) = await store.buckets([("t", 100, 0.001)])
    assert level.tokens == pytest.approx(-20, abs=0.01)
    refused = await store.reserve([BucketTake("t", capacity=100, rate=0.001, amount=1)])
    assert not refused.ok
    assert refused.retry_after == pytest.approx(21 / 0.001, rel=0.01)


async def test_hash_increments_accumulate(store: StateStore) -> None:
    ops = [
        HashIncr("h", (("cost|gpt|gpt-4o", 123), ("requests|gpt|gpt-4o", 1)), ttl=60),
        HashIncr("h2", (("cost|gpt|gpt-4o", 5),), ttl=60),
        HashIncr("h", (("requests|gpt|gpt-4o", 1),), ttl=60),
    ]
    await store.commit(ops)
    await store.commit(ops)
    assert await store.hashes(["h", "h2", "missing"]) == [
        {"cost|gpt|gpt-4o": 246, "requests|gpt|gpt-4o": 4},
        {"cost|gpt|gpt-4o": 10},
        {},
    ]


async def test_generic_primitives(store: StateStore) -> None:
    assert await store.get("k") is None
    await store.set("k", b"value")
    assert await store.get("k") == b"value"
    await store.set("short", b"x", ttl=0.05)
    assert await store.incr("n") == 1
    assert await store.incr("n", 5, ttl=60) == 6
    assert await store.try_lock("lock", ttl=60)
    assert not await store.try_lock("lock", ttl=60)
    await store.unlock("lock")
    assert await store.try_lock("lock", ttl=60)
    await asyncio.sleep(0.1)
    assert await store.get("short") is None
    await store.delete("k", "n")
    assert await store.get("k") is None
    assert await store.incr("n") == 1


async def test_concurrent_reservations_never_overbook(store: StateStore) -> None:
    take = BucketTake("burst", capacity=20, rate=0.0001, amount=1)
    results = await asyncio.gather(*(store.reserve([take]) for _ in range(100)))
    assert sum(r.ok for r in results) == 20


async def test_a_lock_is_released_only_by_its_holder() -> None:
    require_redis()
    prefix = unique_prefix()
    first = RedisStateStore.from_url(REDIS_URL, prefix)
    second = RedisStateStore.from_url(REDIS_URL, prefix)
    try:
        assert await first.try_lock("probe", ttl=60)
        assert not await second.try_lock("probe", ttl=60)
        await second.unlock("probe")
        assert not await second.try_lock("probe", ttl=60)
        await first.unlock("probe")
        assert await second.try_lock("probe", ttl=60)
    finally:
        await first.aclose()
        await second.aclose()
        await drop_prefix(prefix)
