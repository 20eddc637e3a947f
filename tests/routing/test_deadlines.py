"""Request deadlines: no request outlives its deadline, across failover attempts and inside streams.

The assertions are about semantics (a 0.5 s deadline against a 30 s upstream ends far sooner than 30 s),
not about how fast this machine is.
"""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator

import pytest

from podium.backend import CallContext, flatten
from podium.errors import AllProvidersFailed, ProviderTimeout
from podium.health.config import HealthSettings
from podium.health.registry import HealthRegistry
from podium.health.stats import StatsRecorder
from podium.providers.base import Provider
from podium.routing.retry import RetryPolicy
from podium.routing.router import Router
from podium.routing.strategies.priority import PriorityStrategy
from podium.testing import MockProvider
from podium.types import ChatRequest, Message
from tests.health.faults import FaultyOpenAI, openai_provider

SLOW = 30.0


def router(providers: list[Provider], settings: HealthSettings | None = None) -> Router:
    return Router(
        "t1",
        lambda: providers,
        PriorityStrategy(),
        RetryPolicy(max_retries=2, backoff_base=0.01),
        StatsRecorder(),
        health=HealthRegistry(settings or HealthSettings()),
        rng=random.Random(3),
    )


def req() -> ChatRequest:
    return ChatRequest(messages=[Message(role="user", content="hi")])


@pytest.fixture
async def slow() -> AsyncIterator[FaultyOpenAI]:
    up = FaultyOpenAI("slow")
    up.mode = "slow"
    up.slow_seconds = SLOW
    async with up:
        yield up


async def test_deadline_cuts_a_slow_upstream(slow: FaultyOpenAI) -> None:
    p = openai_provider("slow", slow.base_url, priority=1, timeout=60)
    r = router([p])
    t0 = time.monotonic()
    with pytest.raises(AllProvidersFailed) as info:
        await r.chat(req(), CallContext(tenant="t1", deadline=time.monotonic() + 0.5))
    assert time.monotonic() - t0 < SLOW / 3
    assert isinstance(info.value.last_error, ProviderTimeout)
    assert slow.chat_calls == 1  # no retry round fits in what is left of the deadline
    await p.aclose()


async def test_deadline_spans_every_failover_attempt(slow: FaultyOpenAI) -> None:
    first = openai_provider("first", slow.base_url, priority=1, timeout=60)
    second = openai_provider("second", slow.base_url, priority=2, timeout=60)
    r = router([first, second])
    t0 = time.monotonic()
    with pytest.raises(AllProvidersFailed) as info:
        await r.chat(req(), CallContext(tenant="t1", deadline=time.monotonic() + 0.5))
    assert time.monotonic() - t0 < SLOW / 3
    # The first attempt used the whole deadline: the second provider was never called.
    assert [a.provider for a in info.value.attempts] == ["first"]
    await first.aclose()
    await second.aclose()


async def test_default_deadline_from_settings_applies_when_caller_sets_none(slow: FaultyOpenAI) -> None:
    p = openai_provider("slow", slow.base_url, priority=1, timeout=60)
    r = router([p], HealthSettings(request_deadline=0.5))
    t0 = time.monotonic()
    with pytest.raises(AllProvidersFailed):
        await r.chat(req(), CallContext(tenant="t1"))
    assert time.monotonic() - t0 < SLOW / 3
    await p.aclose()


async def test_deadline_cuts_a_stream_between_chunks(slow: FaultyOpenAI) -> None:
    slow.mode = "slow_stream"
    p = openai_provider("slow", slow.base_url, priority=1, timeout=60)
    r = router([p])
    got: list[str] = []
    t0 = time.monotonic()
    with pytest.raises(ProviderTimeout, match="deadline"):  # noqa: PT012 - raised mid-iteration
        async for c in flatten(r.stream(req(), CallContext(tenant="t1", deadline=time.monotonic() + 0.5))):
            got.append(c.delta)
    assert got == ["partial "]
    assert time.monotonic() - t0 < SLOW / 3
    await p.aclose()


async def test_stream_idle_timeout_without_a_deadline(slow: FaultyOpenAI) -> None:
    slow.mode = "slow_stream"
    p = openai_provider("slow", slow.base_url, priority=1, timeout=60)
    r = router([p], HealthSettings(request_deadline=None, stream_idle_timeout=0.3))
    t0 = time.monotonic()
    with pytest.raises(ProviderTimeout, match="no stream data"):
        [c async for c in flatten(r.stream(req(), CallContext(tenant="t1")))]
    assert time.monotonic() - t0 < SLOW / 3
    await p.aclose()


async def test_in_process_provider_is_bounded_too() -> None:
    slow = MockProvider("slow", latency=SLOW, priority=1)
    fast = MockProvider("fast", "quick", priority=2)
    object.__setattr__(slow, "config", slow.config.model_copy(update={"timeout": 0.2}))
    r = router([slow, fast])
    t0 = time.monotonic()
    answer = await r.chat(req(), CallContext(tenant="t1", deadline=time.monotonic() + 5))
    assert answer.content == "quick"
    assert answer.metadata["failed_attempts"][0]["error"] == "ProviderTimeout"
    assert time.monotonic() - t0 < SLOW / 3
