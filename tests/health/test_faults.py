"""Every upstream fault, through the real OpenAI adapter and HTTP stack, against the router with circuits.

For each fault: requests fail over to the healthy provider (or fail with the right typed error when
none is left), the circuit opens after its threshold, the dead provider sees a bounded number of
attempts while it is open, and it recovers through half-open once the fault stops.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from podium.backend import CallContext, flatten
from podium.errors import (
    AllProvidersFailed,
    MalformedResponse,
    NoHealthyProviders,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
)
from podium.health.config import BreakerSettings, HealthSettings
from podium.health.registry import HealthRegistry
from podium.health.stats import StatsRecorder
from podium.observability.metrics import PodiumMetrics
from podium.providers.base import Provider
from podium.routing.retry import RetryPolicy
from podium.routing.router import Router
from podium.routing.strategies.priority import PriorityStrategy
from podium.testing import SimulatedOpenAI
from podium.types import ChatRequest, Message
from tests.health.faults import FaultyOpenAI, openai_provider

THRESHOLD = 3
OPEN_SECONDS = 10.0


class Clock:
    """The breakers' wall clock, moved by hand (deadlines keep using the real monotonic clock)."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Setup:
    bad: FaultyOpenAI
    good: SimulatedOpenAI
    health: HealthRegistry
    clock: Clock
    providers: list[Provider]

    def router(self, *, only_bad: bool = False) -> Router:
        providers = self.providers[:1] if only_bad else self.providers
        return Router(
            "t1",
            lambda: providers,
            PriorityStrategy(),
            RetryPolicy(max_retries=0),
            StatsRecorder(),
            health=self.health,
            metrics=PodiumMetrics(),
            rng=random.Random(1),
        )

    async def set_fault(self, mode: str) -> None:
        """Apply a fault; ``refused`` stops the server (nothing listens on its port any more)."""
        if mode == "refused":
            await self.bad.stop()
        else:
            self.bad.mode = mode  # type: ignore[assignment]

    async def clear_fault(self, mode: str) -> None:
        if mode == "refused":
            await self.bad.start()  # same port: the provider's base_url is valid again
        self.bad.mode = "ok"


@pytest.fixture
async def setup() -> AsyncIterator[Setup]:
    bad, good = FaultyOpenAI("bad"), SimulatedOpenAI("good")
    async with bad, good:
        clock = Clock()
        settings = HealthSettings(
            breaker=BreakerSettings(
                consecutive_failures=THRESHOLD, min_requests=100, open_seconds=OPEN_SECONDS
            ),
            stream_idle_timeout=2.0,
        )
        providers: list[Provider] = [
            openai_provider("bad", bad.base_url, priority=1, timeout=0.5),
            openai_provider("good", good.base_url, priority=2),
        ]
        yield Setup(bad, good, HealthRegistry(settings, clock=clock), clock, providers)
        for p in providers:
            await p.aclose()


def req() -> ChatRequest:
    return ChatRequest(messages=[Message(role="user", content="hello there")])


def ctx(seconds: float = 10.0) -> CallContext:
    return CallContext(tenant="t1", deadline=time.monotonic() + seconds)


FAULTS: list[tuple[str, type[ProviderError]]] = [
    ("500", ProviderUnavailable),
    ("502", ProviderUnavailable),
    ("503", ProviderUnavailable),
    ("529", ProviderUnavailable),
    ("429", ProviderRateLimited),
    ("slow", ProviderTimeout),
    ("refused", ProviderUnavailable),
    ("truncated_json", MalformedResponse),
]


def calls(s: Setup) -> int:
    return s.bad.chat_calls


@pytest.mark.parametrize(("mode", "error"), FAULTS)
async def test_fault_fails_over_opens_circuit_and_recovers(
    setup: Setup, mode: str, error: type[ProviderError]
) -> None:
    router = setup.router()
    await setup.set_fault(mode)
    answers = [await router.chat(req(), ctx()) for _ in range(8)]
    assert {a.provider for a in answers} == {"good"}
    assert answers[0].metadata["failed_attempts"][0]["error"] == error.__name__
    # A 429 with Retry-After opens the circuit at once; other faults after THRESHOLD in a row.
    expected = 1 if mode == "429" else THRESHOLD
    if mode != "refused":
        assert calls(setup) == expected
    assert "failed_attempts" not in answers[-1].metadata  # open: not even tried
    health = setup.health.provider_health("t1", "bad")
    assert (health.circuit, health.status, health.healthy) == ("open", "unhealthy", False)
    assert health.errors_by_class == {error.__name__: expected}
    open_for = float(setup.bad.retry_after) if mode == "429" else OPEN_SECONDS
    assert health.retry_after == pytest.approx(open_for)

    await setup.clear_fault(mode)
    setup.clock.now += open_for + 0.1
    assert setup.health.provider_health("t1", "bad").circuit == "half_open"
    answer = await router.chat(req(), ctx())
    assert answer.provider == "bad"  # the trial request went to the recovered provider
    health = setup.health.provider_health("t1", "bad")
    assert (health.circuit, health.status) == ("closed", "healthy")
    assert (await router.chat(req(), ctx())).provider == "bad"


@pytest.mark.parametrize(("mode", "error"), FAULTS)
async def test_fault_with_no_provider_left_is_typed_then_fails_fast(
    setup: Setup, mode: str, error: type[ProviderError]
) -> None:
    router = setup.router(only_bad=True)
    await setup.set_fault(mode)
    expected = 1 if mode == "429" else THRESHOLD
    for _ in range(expected):
        with pytest.raises(AllProvidersFailed) as info:
            await router.chat(req(), ctx())
        assert isinstance(info.value.last_error, error)
    before = time.monotonic()
    for _ in range(5):
        # A provider that asked to be left alone makes the request a 429 with its Retry-After;
        # a broken one a 503 until its circuit half-opens.
        refused = ProviderRateLimited if mode == "429" else NoHealthyProviders
        with pytest.raises(refused) as fast:
            await router.chat(req(), ctx())
        assert fast.value.status == (429 if mode == "429" else 503)
        assert getattr(fast.value, "retry_after", None) == pytest.approx(
            float(setup.bad.retry_after) if mode == "429" else OPEN_SECONDS
        )
    assert time.monotonic() - before < 1.0  # refused at once, no upstream wait
    if mode != "refused":
        assert calls(setup) == expected


async def test_half_open_trial_that_fails_reopens_for_longer(setup: Setup) -> None:
    router = setup.router()
    await setup.set_fault("503")
    for _ in range(THRESHOLD):
        await router.chat(req(), ctx())
    setup.clock.now += OPEN_SECONDS + 0.1
    answer = await router.chat(req(), ctx())  # the trial fails, the request still succeeds elsewhere
    assert answer.provider == "good"
    health = setup.health.provider_health("t1", "bad")
    assert health.circuit == "open"
    assert health.retry_after == pytest.approx(2 * OPEN_SECONDS)  # backoff doubles
    assert calls(setup) == THRESHOLD + 1


@pytest.mark.parametrize(
    ("mode", "error"), [("invalid_sse", MalformedResponse), ("503", ProviderUnavailable)]
)
async def test_stream_fault_before_first_chunk_fails_over(
    setup: Setup, mode: str, error: type[ProviderError]
) -> None:
    router = setup.router()
    await setup.set_fault(mode)
    for _ in range(6):
        chunks = [c async for c in flatten(router.stream(req(), ctx()))]
        assert "".join(c.delta for c in chunks) == "[good] you said: hello there"
        assert chunks[-1].usage is not None
    assert calls(setup) == THRESHOLD
    health = setup.health.provider_health("t1", "bad")
    assert health.circuit == "open"
    assert health.errors_by_class == {error.__name__: THRESHOLD}
    await setup.clear_fault(mode)
    setup.clock.now += OPEN_SECONDS + 0.1
    chunks = [c async for c in flatten(router.stream(req(), ctx()))]
    assert chunks[0].provider == "bad"
    assert setup.health.provider_health("t1", "bad").circuit == "closed"


async def test_connection_reset_mid_stream_reaches_caller_and_counts(setup: Setup) -> None:
    router = setup.router()
    await setup.set_fault("reset_mid_stream")
    for _ in range(THRESHOLD):
        got: list[str] = []
        with pytest.raises(ProviderError) as info:  # noqa: PT012 - raised mid-iteration
            async for c in flatten(router.stream(req(), ctx())):
                got.append(c.delta)
        assert got == ["partial "]  # what arrived before the reset was delivered
        assert isinstance(info.value, ProviderUnavailable | MalformedResponse)
        assert info.value.provider == "bad"
    assert setup.health.provider_health("t1", "bad").circuit == "open"
    chunks = [c async for c in flatten(router.stream(req(), ctx()))]
    assert chunks[0].provider == "good"
    assert calls(setup) == THRESHOLD
    await setup.clear_fault("reset_mid_stream")
    setup.clock.now += OPEN_SECONDS + 0.1
    chunks = [c async for c in flatten(router.stream(req(), ctx()))]
    assert (chunks[0].provider, setup.health.provider_health("t1", "bad").circuit) == ("bad", "closed")


async def test_half_open_lets_only_the_configured_number_of_trials_through(setup: Setup) -> None:
    router = setup.router()
    await setup.set_fault("slow")
    setup.bad.slow_seconds = 0.3  # under the provider's 0.5 s timeout: slow but successful
    for _ in range(THRESHOLD):
        await setup.set_fault("503")
        await router.chat(req(), ctx())
    await setup.set_fault("slow")
    setup.clock.now += OPEN_SECONDS + 0.1
    answers = await asyncio.gather(*(router.chat(req(), ctx()) for _ in range(4)))
    assert sorted(a.provider for a in answers) == ["bad", "good", "good", "good"]
    assert setup.health.provider_health("t1", "bad").circuit == "closed"
