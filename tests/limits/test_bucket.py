"""Token-bucket arithmetic: exact numbers on a controlled clock, and invariants under hypothesis."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from podium.limits import bucket
from podium.state import BucketAdjust, BucketTake, MemoryStateStore


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_refill_is_linear_and_capped() -> None:
    assert bucket.level(0, stamp=10, capacity=60, rate=1, now=40) == 30
    assert bucket.level(0, stamp=10, capacity=60, rate=1, now=500) == 60
    assert bucket.level(5, stamp=10, capacity=60, rate=1, now=9) == 5  # a clock going back adds nothing


def test_take_refuses_with_the_wait_for_the_missing_tokens() -> None:
    assert bucket.take(10, capacity=10, rate=2, amount=4) == bucket.Taken(True, 6, 0)
    refused = bucket.take(1, capacity=10, rate=2, amount=4)
    assert not refused.ok
    assert refused.tokens == 1
    assert refused.retry_after == 1.5


def test_an_oversized_take_waits_for_a_full_bucket_instead_of_failing_forever() -> None:
    assert bucket.take(10, capacity=10, rate=1, amount=50).ok
    assert bucket.take(9, capacity=10, rate=1, amount=50).retry_after == 1


async def test_requests_per_minute_on_a_controlled_clock() -> None:
    clock = Clock()
    store = MemoryStateStore("t:", clock=clock)
    take = BucketTake("rpm", capacity=60, rate=1.0, amount=1)
    assert all([(await store.reserve([take])).ok for _ in range(60)])
    refused = await store.reserve([take])
    assert not refused.ok
    assert refused.retry_after == pytest.approx(1.0)
    clock.now += 0.5
    assert not (await store.reserve([take])).ok
    clock.now += 0.5
    assert (await store.reserve([take])).ok
    clock.now += 30
    results = [(await store.reserve([take])).ok for _ in range(31)]
    assert results == [True] * 30 + [False]


async def test_token_reservations_are_refunded_on_a_controlled_clock() -> None:
    clock = Clock()
    store = MemoryStateStore("t:", clock=clock)
    tps = BucketTake("tps", capacity=1000, rate=1000, amount=400)
    # Three large requests reserve 1200 tokens against 1000 per second: two are admitted.
    assert [(await store.reserve([tps])).ok for _ in range(3)] == [True, True, False]
    # Each really used 100: 600 come back, so the third is admitted without waiting.
    for _ in range(2):
        await store.commit([BucketAdjust("tps", 1000, 1000, 300)])
    assert (await store.reserve([tps])).ok
    (level,) = await store.buckets([("tps", 1000, 1000)])
    assert level.tokens == pytest.approx(400)
    assert level.reset == pytest.approx(0.6)


@given(
    ops=st.lists(
        st.tuples(st.sampled_from(["take", "adjust", "wait"]), st.floats(min_value=0, max_value=500)),
        max_size=60,
    ),
    capacity=st.floats(min_value=1, max_value=1000),
    rate=st.floats(min_value=0.01, max_value=100),
)
@example(ops=[("take", 1.0), ("take", 5e-324)], capacity=1.0, rate=2.0)  # a subnormal deficit
def test_invariants(ops: list[tuple[str, float]], capacity: float, rate: float) -> None:
    tokens, now, stamp = capacity, 0.0, 0.0
    for kind, value in ops:
        current = bucket.level(tokens, stamp, capacity, rate, now)
        assert current <= capacity  # never above capacity
        if kind == "wait":
            now += value / 10
            continue
        if kind == "adjust":
            tokens, stamp = bucket.adjust(current, capacity, value - 250), now
            continue
        taken = bucket.take(current, capacity, rate, value)
        if taken.ok:
            assert taken.tokens == pytest.approx(current - min(value, capacity))
            assert taken.tokens >= -1e-9
        else:
            # Waiting exactly retry_after makes the same take succeed.
            later = bucket.level(current, now, capacity, rate, now + taken.retry_after)
            assert later >= min(value, capacity) - 1e-6 * max(1.0, capacity)
            assert taken.retry_after > 0
        tokens, stamp = taken.tokens, now
