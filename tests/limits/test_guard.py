"""The guard on both state stores: limits, refunds, waiting, provider failover, streams and costs."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from contextlib import contextmanager

import genai_prices
import pytest

from podium.backend import CallContext, flatten
from podium.errors import BudgetExceeded, ProviderUnavailable, RateLimitExceeded, RequestError
from podium.limits import (
    SETTLEMENT,
    Guarded,
    LimitExceeded,
    ProviderOverLimit,
    RequestEstimate,
)
from podium.limits.governance import Governance
from podium.limits.guard import Permit, Ticket
from podium.limits.limiter import LimitPlan
from podium.state import StateStore
from podium.testing import MockProvider
from podium.types import ChatRequest, Message, Usage


def _gov(store: StateStore) -> Governance:
    return Governance(store)


async def test_large_limits_are_reported_as_whole_numbers_and_changes_apply_at_once(
    store: StateStore,
) -> None:
    gov = _gov(store)
    gov.set_rate_limit("tenant-a", {"requestsPerSecond": 1_000_000, "tokensPerMinute": 10**12}, "tenant")
    ticket = await gov.guard.admit("tenant-a", None, None, RequestEstimate(10))
    assert ticket.headers["x-ratelimit-limit-requests"] == "1000000"
    assert ticket.headers["x-ratelimit-limit-tokens"] == "1000000000000"
    gov.set_rate_limit("tenant-a", {"requestsPerMinute": 1}, "tenant")  # tightened: the next one sees it
    ticket = await gov.guard.admit("tenant-a", None, None, RequestEstimate(10))
    assert (
        ticket.headers["x-ratelimit-limit-requests"] == "1"
        and "x-ratelimit-limit-tokens" not in ticket.headers
    )
    with pytest.raises(LimitExceeded):
        await gov.guard.admit("tenant-a", None, None, RequestEstimate(10))


async def test_tenant_limit_refuses_with_retry_after_and_headers(store: StateStore) -> None:
    gov = _gov(store)
    gov.set_rate_limit("tenant-a", {"requestsPerMinute": 3}, "tenant")
    tickets = [await gov.guard.admit("tenant-a", None, None, RequestEstimate(10)) for _ in range(3)]
    assert tickets[-1].headers["x-ratelimit-limit-requests"] == "3"
    assert tickets[-1].headers["x-ratelimit-remaining-requests"] == "0"
    with pytest.raises(LimitExceeded) as refused:
        await gov.guard.admit("tenant-a", None, None, RequestEstimate(10))
    assert isinstance(refused.value, RateLimitExceeded)
    assert refused.value.status == 429
    assert 19 < refused.value.retry_after <= 20  # one request refills every 20 s
    assert refused.value.headers()["retry-after"] == "20"
    assert refused.value.limit_name == "requests_per_minute"
    # Other tenants are not affected.
    await gov.guard.admit("tenant-b", None, None, RequestEstimate(10))


async def test_token_limit_reserves_the_estimate_and_refunds_real_usage(store: StateStore) -> None:
    gov = _gov(store)
    gov.set_rate_limit("acme", {"tokens_per_minute": 1000}, "tenant")
    big = RequestEstimate(prompt_tokens=200, max_tokens=200)
    first = await gov.guard.admit("acme", None, None, big)
    second = await gov.guard.admit("acme", None, None, big)
    with pytest.raises(LimitExceeded) as refused:
        await gov.guard.admit("acme", None, None, big)
    assert refused.value.unit == "tokens"
    # Each used 250 of its 400 tokens: 300 come back, enough for one more 400-token request.
    for ticket in (first, second):
        await gov.guard.settle(ticket, Usage(200, 50, 250), cost=0.0, model="m")
    status = await gov.get_rate_limit_status("acme")
    assert status.levels[0].remaining == pytest.approx(500, abs=1)
    await gov.guard.admit("acme", None, None, big)
    # A cancelled request gives back all its tokens.
    ticket = await gov.guard.admit("acme", None, None, RequestEstimate(10, max_tokens=90))
    await gov.guard.cancel(ticket)
    status = await gov.get_rate_limit_status("acme")
    assert status.levels[0].remaining == pytest.approx(100, abs=1)


async def test_concurrency_cap_is_freed_by_settle_and_cancel(store: StateStore) -> None:
    gov = _gov(store)
    gov.set_rate_limit("k1", {"concurrentRequests": 2}, "key")
    a = await gov.guard.admit("t", "k1", None, RequestEstimate(1))
    b = await gov.guard.admit("t", "k1", None, RequestEstimate(1))
    with pytest.raises(LimitExceeded) as refused:
        await gov.guard.admit("t", "k1", None, RequestEstimate(1))
    assert refused.value.scope == "key"
    assert (await gov.get_rate_limit_status("k1", "key")).in_flight == 2
    await gov.guard.settle(a, Usage(1, 1, 2), cost=0.0, model="m")
    await gov.guard.cancel(b)
    assert (await gov.get_rate_limit_status("k1", "key")).in_flight == 0


async def test_max_wait_waits_for_capacity_instead_of_refusing(store: StateStore) -> None:
    gov = _gov(store)
    gov.set_rate_limit("waiter", {"requestsPerSecond": 20, "maxWait": 1.0}, "tenant")
    for _ in range(20):
        await gov.guard.admit("waiter", None, None, RequestEstimate(1))
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await gov.guard.admit("waiter", None, None, RequestEstimate(1))
    assert loop.time() - t0 > 0.02  # it had to wait for a refill (1/20 s) rather than fail


async def test_provider_over_its_limit_fails_over(store: StateStore) -> None:
    gov = _gov(store)
    gov.set_rate_limit("openai-provider", {"requestsPerHour": 1}, "provider")
    ticket = await gov.guard.admit("t", None, None, RequestEstimate(5))
    await gov.guard.admit_provider(ticket, "openai-provider", "gpt-4o")
    other = await gov.guard.admit("t", None, None, RequestEstimate(5))
    with pytest.raises(ProviderOverLimit) as over:
        await gov.guard.admit_provider(other, "openai-provider", "gpt-4o")
    assert over.value.provider == "openai-provider" and over.value.status == 429
    assert over.value.retry_after is not None and over.value.retry_after > 3500
    permit = await gov.guard.admit_provider(other, "backup", "gpt-4o")
    assert permit.provider == "backup"


async def test_reset_and_bad_configuration(store: StateStore) -> None:
    gov = _gov(store)
    gov.set_rate_limit("t", {"requestsPerMinute": 1}, "tenant")
    await gov.guard.admit("t", None, None, RequestEstimate(1))
    await gov.reset_rate_limit("t")
    await gov.guard.admit("t", None, None, RequestEstimate(1))
    with pytest.raises(RequestError, match="requestsPerSecond"):
        gov.set_rate_limit("t", {}, "tenant")
    with pytest.raises(RequestError, match="scope"):
        gov.set_rate_limit("t", {"requestsPerMinute": 1}, "planet")
    with pytest.raises(RequestError):
        gov.set_rate_limit("t", {"requestsPerMinit": 1}, "tenant")


def _request(max_tokens: int | None = 100) -> ChatRequest:
    return ChatRequest(
        messages=[Message(role="user", content="hello there")], model="gpt-4o", max_tokens=max_tokens
    )


def _price(prompt: int, completion: int) -> float:
    usage = genai_prices.Usage(input_tokens=prompt, output_tokens=completion)
    return float(genai_prices.calc_price(usage, "gpt-4o", provider_id="openai").total_price)


async def test_guarded_costs_chat_and_streams_from_real_usage(store: StateStore) -> None:
    gov = _gov(store)
    gov.pricing.set_provider("gpt", kind="openai")
    provider = MockProvider("gpt", reply="one two three four", default_model="gpt-4o")
    guarded = Guarded(provider, gov.guard, provider_name="gpt", default_model="gpt-4o")
    response = await guarded.chat(_request(), CallContext(tenant="acme"))
    assert response.cost == pytest.approx(_price(2, 4))
    ctx = CallContext(tenant="acme")
    chunks = [c async for c in flatten(guarded.stream(_request(), ctx))]
    assert chunks[-1].usage is not None
    assert ctx.metadata[SETTLEMENT].cost == pytest.approx(_price(2, 4))
    summary = await gov.get_cost_summary("acme")
    assert summary.requests == 2
    assert summary.total_cost == pytest.approx(2 * _price(2, 4))
    assert summary.by_model == {"gpt/gpt-4o": pytest.approx(2 * _price(2, 4))}


async def test_an_abandoned_stream_is_charged_for_what_was_received(store: StateStore) -> None:
    gov = _gov(store)
    gov.pricing.set_provider("gpt", kind="openai")
    gov.set_rate_limit("acme", {"concurrentRequests": 1}, "tenant")
    words = " ".join(["word"] * 50)
    guarded = Guarded(
        MockProvider("gpt", reply=words), gov.guard, provider_name="gpt", default_model="gpt-4o"
    )
    ctx = CallContext(tenant="acme")
    stream = flatten(guarded.stream(_request(), ctx))
    received = ""
    async for chunk in stream:
        received += chunk.delta
        if len(received) >= 20:
            break
    await stream.aclose()  # the reader hung up
    settlement = ctx.metadata[SETTLEMENT]
    assert settlement.cost > 0
    summary = await gov.get_cost_summary("acme")
    assert summary.total_tokens > 0
    # Its concurrency slot was freed: the next request is admitted.
    assert (await gov.get_rate_limit_status("acme")).in_flight == 0


async def test_a_failed_attempt_costs_nothing_and_frees_everything(store: StateStore) -> None:
    gov = _gov(store)
    gov.set_rate_limit("acme", {"concurrentRequests": 1, "tokensPerMinute": 10_000}, "tenant")
    gov.set_budget("acme", daily=1.0, enforce_hard_limit=True)
    failing = MockProvider("gpt", failures=[ProviderUnavailable("down", provider="gpt")])
    guarded = Guarded(failing, gov.guard, provider_name="gpt", default_model="gpt-4o")
    with pytest.raises(ProviderUnavailable):
        await guarded.chat(_request(), CallContext(tenant="acme"))
    status = await gov.get_budget_status("acme")
    assert (status.periods[0].spent, status.periods[0].reserved) == (0, 0)
    limits = await gov.get_rate_limit_status("acme")
    assert limits.in_flight == 0
    assert limits.levels[0].remaining == pytest.approx(10_000, abs=1)


async def test_hard_budget_refuses_what_it_cannot_cover(store: StateStore) -> None:
    gov = _gov(store)
    gov.set_budget("acme", daily=0.012, enforce_hard_limit=True)
    gov.pricing.set_provider("gpt", prices={"input": 10.0, "output": 10.0})  # $0.00001 per token
    # 100 prompt + 400 max output tokens = at most $0.005: two fit in $0.012, the third does not.
    est = RequestEstimate(100, 400, "gpt-4o")
    first = await gov.guard.admit("acme", None, "gpt", est)
    await gov.guard.admit("acme", None, "gpt", est)
    with pytest.raises(BudgetExceeded) as refused:
        await gov.guard.admit("acme", None, "gpt", est)
    assert refused.value.status == 402
    assert refused.value.scope == "tenant:acme:daily"
    assert "lower max_tokens" in refused.value.message
    # Settling the first at its real, smaller cost frees room.
    await gov.guard.settle(first, Usage(100, 50, 150))
    await gov.guard.admit("acme", None, "gpt", est)
    status = await gov.get_budget_status("acme")
    assert status.periods[0].spent == pytest.approx(0.0015)
    assert status.periods[0].reserved == pytest.approx(0.01)


async def test_governance_from_settings_applies_the_seed_sections() -> None:
    from podium.settings import Settings

    settings = Settings.load(
        env_file=None,
        limits=[{"target": "tenant-a", "scope": "tenant", "limits": {"requestsPerMinute": 1}}],
        budgets=[{"tenant": "tenant-a", "daily": 0.5, "enforceHardLimit": True}],
    )
    gov = Governance.from_settings(settings)
    try:
        await gov.guard.admit("tenant-a", None, None, RequestEstimate(1, 1, max_cost=0.1))
        with pytest.raises(LimitExceeded):
            await gov.guard.admit("tenant-a", None, None, RequestEstimate(1))
        assert (await gov.get_budget_status("tenant-a")).periods[0].reserved == pytest.approx(0.1)
    finally:
        await gov.aclose()


@contextmanager
def _cyclic_garbage() -> Iterator[list[object]]:
    """Collect what the block leaves behind that only the cycle collector could free."""
    gc.collect()
    gc.disable()  # no collection during the block may free a cycle before it is counted
    found: list[object] = []
    try:
        yield found
    finally:
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        found.extend(gc.garbage)
        gc.garbage.clear()
        gc.set_debug(0)
        gc.enable()


async def test_served_requests_leave_no_governance_cycles(store: StateStore) -> None:
    # A request's ticket, permits and limit plans must be freed when it ends, not left for the cycle
    # collector: under load those collections walked every request in flight (issue 7's profile).
    gov = _gov(store)
    gov.set_rate_limit("acme", {"requestsPerSecond": 1000, "tokensPerMinute": 10**9}, "tenant")
    gov.set_rate_limit("gpt", {"concurrentRequests": 10}, "provider")
    gov.set_budget("acme", daily=100.0)
    guarded = Guarded(
        MockProvider("gpt", reply="a b c"), gov.guard, provider_name="gpt", default_model="gpt-4o"
    )
    await guarded.chat(_request(), CallContext(tenant="acme"))  # first use: caches, price tables
    with _cyclic_garbage() as garbage:
        for _ in range(5):
            await guarded.chat(_request(), CallContext(tenant="acme"))
            [c async for c in flatten(guarded.stream(_request(), CallContext(tenant="acme")))]
    left = [type(o).__name__ for o in garbage if isinstance(o, Ticket | Permit | LimitPlan)]
    assert left == []
    assert (await gov.get_rate_limit_status("gpt", "provider")).in_flight == 0
