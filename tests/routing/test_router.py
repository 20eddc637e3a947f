from __future__ import annotations

import random
import time
from collections import Counter

import pytest

from podium.backend import CallContext, flatten
from podium.errors import (
    AllProvidersFailed,
    ModelNotFound,
    NoHealthyProviders,
    NotFound,
    ProviderAuthError,
    ProviderBadRequest,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
)
from podium.health.stats import StatsRecorder
from podium.providers.base import Provider
from podium.routing.retry import RetryPolicy
from podium.routing.router import Router
from podium.routing.strategies.priority import PriorityStrategy
from podium.testing import MockProvider
from podium.types import ChatRequest, EmbedRequest, Message


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def make_router(
    providers: list[Provider], retry: RetryPolicy | None = None
) -> tuple[Router, StatsRecorder, Sleeps]:
    stats = StatsRecorder()
    sleeps = Sleeps()
    router = Router(
        "t1",
        lambda: providers,
        PriorityStrategy(),
        retry or RetryPolicy(max_retries=0),
        stats,
        rng=random.Random(7),
        sleep=sleeps,
    )
    return router, stats, sleeps


def req(model: str | None = None) -> ChatRequest:
    return ChatRequest(messages=[Message(role="user", content="hi")], model=model)


async def test_lower_priority_number_is_tried_first() -> None:
    a = MockProvider("a", "from a", priority=2)
    b = MockProvider("b", "from b", priority=1)
    router, _, _ = make_router([a, b])
    r = await router.chat(req(), CallContext(tenant="t1"))
    assert (r.provider, r.content) == ("b", "from b")
    assert not a.calls


@pytest.mark.parametrize(
    "error",
    [
        ProviderUnavailable("down"),
        ProviderTimeout("slow"),
        ProviderRateLimited("busy", retry_after=1.0),
        ProviderAuthError("bad key"),
    ],
)
async def test_failover_to_next_provider_and_statistics_show_both_attempts(error: Exception) -> None:
    a = MockProvider("a", "from a", priority=1, failures=[error])  # type: ignore[list-item]
    b = MockProvider("b", "from b", priority=2)
    router, stats, _ = make_router([a, b])
    r = await router.chat(req(), CallContext(tenant="t1"))
    assert r.content == "from b"
    assert r.metadata["failed_attempts"][0]["provider"] == "a"
    snap = stats.snapshot()
    assert snap.providers["t1/a"].requests == 1
    assert snap.providers["t1/a"].errors == 1
    assert snap.providers["t1/a"].errors_by_type == {type(error).__name__: 1}
    assert snap.providers["t1/b"].successes == 1
    assert snap.total_requests == 1
    assert snap.total_errors == 0


async def test_bad_request_does_not_fail_over() -> None:
    a = MockProvider("a", priority=1, failures=[ProviderBadRequest("invalid tool schema")])
    b = MockProvider("b", priority=2)
    router, _, _ = make_router([a, b])
    with pytest.raises(ProviderBadRequest, match="invalid tool schema"):
        await router.chat(req(), CallContext(tenant="t1"))
    assert not b.calls


async def test_all_failed_lists_every_attempt() -> None:
    a = MockProvider("a", priority=1, failures=[ProviderUnavailable("a down")])
    b = MockProvider("b", priority=2, failures=[ProviderAuthError("b key")])
    router, stats, _ = make_router([a, b])
    with pytest.raises(AllProvidersFailed) as info:
        await router.chat(req(), CallContext(tenant="t1"))
    assert [(x.provider, type(x.error)) for x in info.value.attempts] == [
        ("a", ProviderUnavailable),
        ("b", ProviderAuthError),
    ]
    assert stats.snapshot().total_errors == 1


async def test_equal_priority_round_robin() -> None:
    a, b = MockProvider("a", "A"), MockProvider("b", "B")
    router, _, _ = make_router([a, b])
    seen = [(await router.chat(req(), CallContext(tenant="t1"))).content for _ in range(6)]
    assert Counter(seen) == {"A": 3, "B": 3}
    assert seen[0] != seen[1]


async def test_weights_share_traffic_evenly_interleaved() -> None:
    a, b = MockProvider("a", "A", weight=3), MockProvider("b", "B", weight=1)
    router, _, _ = make_router([a, b])
    seen = [(await router.chat(req(), CallContext(tenant="t1"))).content for _ in range(8)]
    assert Counter(seen) == {"A": 6, "B": 2}
    assert "BB" not in "".join(seen)


async def test_retry_rounds_with_backoff_then_success() -> None:
    a = MockProvider("a", "ok", failures=[ProviderUnavailable("x"), ProviderUnavailable("y")])
    router, stats, sleeps = make_router([a], RetryPolicy(max_retries=2, backoff_base=0.5, backoff_max=4))
    r = await router.chat(req(), CallContext(tenant="t1"))
    assert r.content == "ok"
    assert len(sleeps.delays) == 2
    assert 0 <= sleeps.delays[0] <= 0.5 and 0 <= sleeps.delays[1] <= 1.0
    assert stats.snapshot().providers["t1/a"].requests == 3


async def test_retry_after_is_honoured() -> None:
    a = MockProvider("a", "ok", failures=[ProviderRateLimited("slow down", retry_after=2.5)])
    router, _, sleeps = make_router([a], RetryPolicy(max_retries=1, backoff_base=0.01))
    assert (await router.chat(req(), CallContext(tenant="t1"))).content == "ok"
    assert sleeps.delays == [2.5]


async def test_retry_after_longer_than_allowed_is_not_waited_for() -> None:
    a = MockProvider("a", "ok", failures=[ProviderRateLimited("slow down", retry_after=60)])
    router, _, sleeps = make_router([a], RetryPolicy(max_retries=3, max_retry_after=10))
    with pytest.raises(AllProvidersFailed):
        await router.chat(req(), CallContext(tenant="t1"))
    assert sleeps.delays == []


async def test_no_attempt_after_deadline() -> None:
    a = MockProvider("a", priority=1, failures=[ProviderTimeout("slow")], latency=0.05)
    b = MockProvider("b", priority=2)
    router, _, _ = make_router([a, b])
    with pytest.raises(AllProvidersFailed):
        await router.chat(req(), CallContext(tenant="t1", deadline=time.monotonic() + 0.01))
    assert not b.calls


async def test_explicit_provider_only() -> None:
    a, b = MockProvider("a", "A", priority=1), MockProvider("b", "B", priority=2)
    router, _, _ = make_router([a, b])
    assert (await router.chat(req(), CallContext(tenant="t1", provider="b"))).content == "B"
    with pytest.raises(NotFound):
        await router.chat(req(), CallContext(tenant="t1", provider="zzz"))


async def test_model_selects_serving_provider_and_provider_prefix() -> None:
    a = MockProvider("a", "A", priority=1, default_model="small")
    b = MockProvider("b", "B", priority=2, default_model="large")
    router, _, _ = make_router([a, b])
    r = await router.chat(req("large"), CallContext(tenant="t1"))
    assert (r.provider, r.model) == ("b", "large")
    r = await router.chat(req("a/custom-model"), CallContext(tenant="t1"))
    assert (r.provider, r.model) == ("a", "custom-model")


async def test_unknown_model_lists_available() -> None:
    a = MockProvider("a", default_model="small")
    object.__setattr__(a, "config", a.config.model_copy(update={"models": ("small", "tiny")}))
    router, _, _ = make_router([a])
    with pytest.raises(ModelNotFound, match="small, tiny"):
        await router.chat(req("huge"), CallContext(tenant="t1"))


async def test_no_providers() -> None:
    router, _, _ = make_router([])
    with pytest.raises(NoHealthyProviders, match="create_provider"):
        await router.chat(req(), CallContext(tenant="t1"))


async def test_stream_fails_over_before_first_chunk() -> None:
    a = MockProvider("a", "from a", priority=1, failures=[ProviderUnavailable("down")])
    b = MockProvider("b", "from b here", priority=2)
    router, stats, _ = make_router([a, b])
    chunks = [c async for c in flatten(router.stream(req(), CallContext(tenant="t1")))]
    assert "".join(c.delta for c in chunks) == "from b here"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3
    snap = stats.snapshot()
    assert snap.providers["t1/a"].errors == 1
    assert snap.providers["t1/b"].completion_tokens == 3


async def test_stream_error_after_first_chunk_reaches_caller() -> None:
    class Breaks(MockProvider):
        async def stream(self, request, ctx):  # type: ignore[no-untyped-def,override]
            yield await anext(super().stream(request, ctx))
            raise ProviderUnavailable("connection reset mid-stream")

    a = Breaks("a", "one two three", priority=1)
    b = MockProvider("b", priority=2)
    router, _, _ = make_router([a, b])
    got: list[str] = []
    with pytest.raises(ProviderUnavailable, match="mid-stream"):  # noqa: PT012 - raised mid-iteration
        async for c in flatten(router.stream(req(), CallContext(tenant="t1"))):
            got.append(c.delta)
    assert got == ["one "]
    assert not b.calls


async def test_embed_fails_over() -> None:
    a = MockProvider("a", priority=1, failures=[ProviderUnavailable("down")])
    b = MockProvider("b", priority=2)
    router, _, _ = make_router([a, b])
    r = await router.embed(EmbedRequest(input=["x", "y"]), CallContext(tenant="t1"))
    assert r.provider == "b" and len(r.embeddings) == 2
