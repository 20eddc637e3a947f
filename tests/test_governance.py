"""Rate limits, costs and budgets through the Orchestrator, as a library user drives them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from podium import BudgetExceeded, Orchestrator, RateLimitExceeded, RetryPolicy
from podium.testing import SimulatedOpenAI

KEY = "sk-gov-0123456789abcdefSECRET"
# A made-up model priced by the provider's own table: $10 / $30 per million tokens.
PRICES = {"input": 10.0, "output": 30.0}


@pytest.fixture
async def up() -> AsyncIterator[SimulatedOpenAI]:
    async with SimulatedOpenAI("oa", models=("house-model",)) as server:
        yield server


@pytest.fixture
async def orch(up: SimulatedOpenAI) -> AsyncIterator[Orchestrator]:
    async with Orchestrator(retry=RetryPolicy(max_retries=0)) as o:
        await o.create_provider(
            type="openai",
            name="house",
            tenant="acme",
            api_key=KEY,
            base_url=up.base_url,
            default_model="house-model",
            prices=PRICES,
            priority=1,
        )
        yield o


def expected_cost(prompt: int, completion: int) -> float:
    return (prompt * PRICES["input"] + completion * PRICES["output"]) / 1_000_000


async def test_every_answer_is_costed_streams_included(orch: Orchestrator) -> None:
    r = await orch.chat("price me", tenant="acme")
    assert r.cost == pytest.approx(expected_cost(r.usage.prompt_tokens, r.usage.completion_tokens))
    chunks = [c async for c in orch.stream("price me too", tenant="acme")]
    last = chunks[-1]
    assert last.usage is not None and last.cost is not None
    assert last.cost == pytest.approx(expected_cost(last.usage.prompt_tokens, last.usage.completion_tokens))
    summary = await orch.get_cost_summary("acme")
    assert summary.requests == 2
    assert summary.total_cost == pytest.approx(r.cost + last.cost)
    assert summary.by_provider == {"house": pytest.approx(r.cost + last.cost)}


async def test_a_tenant_rate_limit_refuses_with_retry_after(orch: Orchestrator) -> None:
    orch.set_rate_limit("acme", {"requestsPerMinute": 3}, "tenant")
    for _ in range(3):
        await orch.chat("ok", tenant="acme")
    with pytest.raises(RateLimitExceeded) as info:
        await orch.chat("one too many", tenant="acme")
    assert info.value.status == 429 and info.value.retry_after > 0
    status = await orch.get_rate_limit_status("acme")
    assert status.target == "acme"
    await orch.reset_rate_limit("acme")
    await orch.chat("after reset", tenant="acme")


async def test_a_provider_over_its_limit_fails_over_without_hurting_its_health(
    orch: Orchestrator, up: SimulatedOpenAI
) -> None:
    await orch.create_provider(
        type="openai",
        name="backup",
        tenant="acme",
        api_key=KEY,
        base_url=up.base_url,
        default_model="house-model",
        prices=PRICES,
        priority=2,
    )
    orch.set_rate_limit("house", {"requestsPerMinute": 1}, "provider")
    assert (await orch.chat("a", tenant="acme")).provider == "house"
    assert (await orch.chat("b", tenant="acme")).provider == "backup"
    health = orch.get_provider_health("house", "acme")
    assert (health.circuit, health.error_rate) == ("closed", 0.0)


async def test_a_hard_budget_refuses_before_calling_the_provider(
    orch: Orchestrator, up: SimulatedOpenAI
) -> None:
    orch.set_budget("acme", daily=0.001, enforce_hard_limit=True)
    # max_tokens 10 at $30/M reserves well under the budget; 100 000 tokens cannot fit.
    await orch.chat("small", tenant="acme", max_tokens=10)
    calls = len(up.requests)
    with pytest.raises(BudgetExceeded) as info:
        await orch.chat("huge", tenant="acme", max_tokens=100_000)
    assert info.value.status == 402 and info.value.scope == "tenant:acme:daily"
    assert len(up.requests) == calls  # refused before any upstream call
    status = await orch.get_budget_status("acme")
    assert status.tenant == "acme"


async def test_unknown_price_fields_are_refused_with_the_provider(
    orch: Orchestrator, up: SimulatedOpenAI
) -> None:
    from podium import RequestError

    with pytest.raises(RequestError, match="prices"):
        await orch.create_provider(
            type="openai",
            name="bad",
            tenant="acme",
            api_key=KEY,
            base_url=up.base_url,
            prices={"input": 1.0, "outptu": 2.0},
        )


async def test_a_tenant_qualified_provider_limit_leaves_other_tenants_alone(
    orch: Orchestrator, up: SimulatedOpenAI
) -> None:
    await orch.create_provider(
        type="openai", name="house", tenant="globex", api_key=KEY, base_url=up.base_url,
        default_model="house-model",
    )  # fmt: skip
    orch.set_rate_limit("acme/house", {"requestsPerMinute": 1}, "provider")
    await orch.chat("a", tenant="acme")
    with pytest.raises(RateLimitExceeded):
        await orch.chat("b", tenant="acme")
    for _ in range(3):
        await orch.chat("globex's own house is not limited", tenant="globex")
