"""The router with circuits: what counts as a fault, per-model circuits, explicit providers, trials."""

from __future__ import annotations

import asyncio
import contextlib
import random

import pytest

from podium.backend import CallContext
from podium.errors import (
    AllProvidersFailed,
    ContextLengthExceeded,
    NoHealthyProviders,
    ProviderBadRequest,
    ProviderError,
    ProviderNotFound,
    ProviderRateLimited,
    ProviderUnavailable,
    RateLimitExceeded,
    RequestError,
)
from podium.health.config import BreakerSettings, HealthSettings
from podium.health.registry import HealthRegistry
from podium.health.stats import StatsRecorder
from podium.observability.metrics import PodiumMetrics
from podium.providers.base import Provider
from podium.routing.retry import RetryPolicy
from podium.routing.router import Router
from podium.routing.strategies.priority import PriorityStrategy
from podium.testing import MockProvider
from podium.types import ChatRequest, Message


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def setup(providers: list[Provider], **breaker: float) -> tuple[Router, HealthRegistry, Clock, PodiumMetrics]:
    clock = Clock()
    settings = BreakerSettings(
        **{"consecutive_failures": 3, "min_requests": 100, "open_seconds": 5, **breaker}
    )
    health = HealthRegistry(HealthSettings(breaker=settings), clock=clock)
    metrics = PodiumMetrics()
    r = Router(
        "t1",
        lambda: providers,
        PriorityStrategy(),
        RetryPolicy(max_retries=0),
        StatsRecorder(),
        health=health,
        metrics=metrics,
        rng=random.Random(2),
    )
    return r, health, clock, metrics


def req(model: str | None = None) -> ChatRequest:
    return ChatRequest(messages=[Message(role="user", content="hi")], model=model)


CTX = CallContext(tenant="t1")


@pytest.mark.parametrize(
    "error", [ProviderBadRequest("bad schema"), ContextLengthExceeded("prompt too long")]
)
async def test_callers_mistakes_never_open_a_circuit(error: ProviderError) -> None:
    a = MockProvider("a", priority=1, failures=[type(error)(str(error)) for _ in range(10)])
    b = MockProvider("b", "B", priority=2)
    r, health, _, _ = setup([a, b])
    for _ in range(10):
        with contextlib.suppress(ProviderBadRequest):  # bad requests do not fail over
            await r.chat(req(), CTX)
    h = health.provider_health("t1", "a")
    assert h.circuit == "closed"
    assert h.error_rate == 0.0
    assert h.errors_by_class == {type(error).__name__: 10}
    assert len(a.calls) == 10


async def test_request_errors_before_the_upstream_do_not_count() -> None:
    a = MockProvider("a", priority=1, default_model="")
    r, health, _, _ = setup([a])
    for _ in range(5):
        with pytest.raises(RequestError, match="default_model"):
            await r.chat(req(), CTX)
    assert health.provider_health("t1", "a").circuit == "closed"


async def test_unknown_model_opens_only_that_models_circuit() -> None:
    a = MockProvider("a", "A", priority=1, failures=[ProviderNotFound("no such model")] * 3)
    b = MockProvider("b", "B", priority=2)
    r, health, _, _ = setup([a, b])
    for _ in range(3):
        with pytest.raises(AllProvidersFailed):
            await r.chat(req("a/missing"), CTX)
    h = health.provider_health("t1", "a")
    assert h.circuit == "closed"
    assert h.models["missing"].circuit == "open"
    with pytest.raises(NoHealthyProviders):
        await r.chat(req("a/missing"), CTX)
    assert (await r.chat(req("a/other"), CTX)).content == "A"  # other models still served


async def test_error_ratio_opens_with_enough_requests() -> None:
    flaky = [ProviderUnavailable("x") if i % 2 else None for i in range(10)]

    class Flaky(MockProvider):
        async def chat(self, request, ctx):  # type: ignore[no-untyped-def,override]
            err = flaky.pop(0) if flaky else None
            if err is not None:
                self.calls.append(request)
                raise err
            return await super().chat(request, ctx)

    a = Flaky("a", "A", priority=1)
    b = MockProvider("b", "B", priority=2)
    r, health, _, _ = setup([a, b], consecutive_failures=50, min_requests=10, failure_ratio=0.5)
    for _ in range(9):
        await r.chat(req(), CTX)
    assert health.provider_health("t1", "a").circuit == "closed"
    await r.chat(req(), CTX)  # the tenth request: 5 faults of 10
    assert health.provider_health("t1", "a").circuit == "open"
    assert "5 of the last 10" in (health.provider_health("t1", "a").circuit_reason or "")


async def test_explicit_provider_with_open_circuit_fails_fast_with_retry_after() -> None:
    a = MockProvider("a", priority=1, failures=[ProviderUnavailable("down")] * 3)
    b = MockProvider("b", "B", priority=2)
    r, _, clock, metrics = setup([a, b])
    for _ in range(3):
        await r.chat(req(), CTX)
    clock.now += 2
    with pytest.raises(NoHealthyProviders, match="circuit is open") as info:
        await r.chat(req(), CallContext(tenant="t1", provider="a"))
    assert info.value.retry_after == pytest.approx(3.0)
    skips = metrics.registry.get_sample_value("podium_circuit_skips_total", {"tenant": "t1", "provider": "a"})
    assert skips == 1.0


async def test_rate_limit_without_retry_after_counts_as_a_fault() -> None:
    a = MockProvider("a", priority=1, failures=[ProviderRateLimited("busy")] * 3)
    b = MockProvider("b", "B", priority=2)
    r, health, _, _ = setup([a, b])
    for _ in range(3):
        await r.chat(req(), CTX)
    assert health.provider_health("t1", "a").circuit == "open"


async def test_cancelled_trial_frees_its_slot() -> None:
    a = MockProvider("a", "A", priority=1, failures=[ProviderUnavailable("down")] * 3)
    b = MockProvider("b", "B", priority=2)
    r, health, clock, _ = setup([a, b])
    for _ in range(3):
        await r.chat(req(), CTX)
    clock.now += 6
    a.latency = 10
    task = asyncio.create_task(r.chat(req(), CTX))
    await asyncio.sleep(0.05)
    assert (await r.chat(req(), CTX)).provider == "b"  # the single trial slot is taken
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    a.latency = 0
    assert (await r.chat(req(), CTX)).provider == "a"  # the slot came back; the trial closes it
    assert health.provider_health("t1", "a").circuit == "closed"


class OverOwnLimit(MockProvider):
    """Stands for a provider behind podium's own per-provider rate limit that is exhausted."""

    def __init__(self, name: str, retry_after: float, priority: int) -> None:
        super().__init__(name, priority=priority)
        self.retry_after = retry_after

    async def chat(self, request, ctx):  # type: ignore[no-untyped-def,override]
        raise RateLimitExceeded(f"{self.name}: 10 requests per second", retry_after=self.retry_after)


async def test_own_rate_limit_moves_on_without_hurting_health() -> None:
    a = OverOwnLimit("a", 2.0, priority=1)
    b = MockProvider("b", "B", priority=2)
    r, health, _, _ = setup([a, b])
    for _ in range(5):
        assert (await r.chat(req(), CTX)).content == "B"
    assert health.provider_health("t1", "a").circuit == "closed"
    r2, _, _, _ = setup([a, OverOwnLimit("c", 0.5, priority=2)])
    with pytest.raises(RateLimitExceeded) as info:
        await r2.chat(req(), CTX)
    assert info.value.retry_after == 0.5  # the soonest of the limits
