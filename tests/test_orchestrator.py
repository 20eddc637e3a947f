"""The Orchestrator as a user drives it: real adapters, real local upstreams over HTTP."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from podium import (
    AllProvidersFailed,
    Conflict,
    ModelNotFound,
    NoHealthyProviders,
    NotFound,
    Orchestrator,
    ProviderTimeout,
    ProviderUnavailable,
    RequestError,
    RetryPolicy,
)
from podium.testing import MockProvider, SimulatedAnthropic, SimulatedOpenAI

KEY = "sk-test-0123456789abcdefSECRET"


@pytest.fixture
async def openai_up() -> AsyncIterator[SimulatedOpenAI]:
    async with SimulatedOpenAI("oa") as up:
        yield up


@pytest.fixture
async def anthropic_up() -> AsyncIterator[SimulatedAnthropic]:
    async with SimulatedAnthropic("an") as up:
        yield up


@pytest.fixture
async def orch() -> AsyncIterator[Orchestrator]:
    async with Orchestrator(retry=RetryPolicy(max_retries=0)) as o:
        yield o


async def two_providers(
    orch: Orchestrator, oa: SimulatedOpenAI, an: SimulatedAnthropic, **oa_extra: object
) -> None:
    await orch.create_provider(
        type="openai",
        name="gpt",
        tenant="my-app",
        api_key=KEY,
        base_url=oa.base_url,
        default_model="gpt-4o-mini",
        priority=1,
        **oa_extra,
    )
    await orch.create_provider(
        type="anthropic",
        name="claude",
        tenant="my-app",
        api_key="ant-key-1234567890abcd",
        base_url=an.base_url,
        default_model="claude-3-5-haiku-latest",
        priority=2,
    )


async def test_issue_example_chat_and_stream(
    orch: Orchestrator, openai_up: SimulatedOpenAI, anthropic_up: SimulatedAnthropic
) -> None:
    await two_providers(orch, openai_up, anthropic_up)
    r = await orch.chat([{"role": "user", "content": "Hello"}], tenant="my-app", max_tokens=100)
    assert r.content == "[oa] you said: Hello"
    assert (r.provider, r.model) == ("gpt", "gpt-4o-mini")
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens > 0
    assert r.latency_ms > 0
    assert openai_up.requests[0].headers["Authorization"] == f"Bearer {KEY}"
    assert openai_up.requests[0].body["max_tokens"] == 100

    chunks = [c async for c in orch.stream([{"role": "user", "content": "Count to 5"}], tenant="my-app")]
    assert "".join(c.delta for c in chunks) == "[oa] you said: Count to 5"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert openai_up.requests[-1].body["stream_options"] == {"include_usage": True}


async def test_anthropic_stream_and_explicit_provider(
    orch: Orchestrator, openai_up: SimulatedOpenAI, anthropic_up: SimulatedAnthropic
) -> None:
    await two_providers(orch, openai_up, anthropic_up)
    chunks = [c async for c in orch.stream("one two three", tenant="my-app", provider="claude")]
    assert "".join(c.delta for c in chunks) == "[an] you said: one two three"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 6
    assert not openai_up.requests


@pytest.mark.parametrize("fault", ["503", "timeout", "refused"])
async def test_failover_when_first_upstream_fails(
    orch: Orchestrator, openai_up: SimulatedOpenAI, anthropic_up: SimulatedAnthropic, fault: str
) -> None:
    base_url = openai_up.base_url
    if fault == "503":
        openai_up.fail(503)
    elif fault == "timeout":
        openai_up.fail(200, delay=2.0)
    else:
        with socket.socket() as s:  # a port nothing listens on
            s.bind(("127.0.0.1", 0))
            base_url = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    await orch.create_provider(
        type="openai",
        name="gpt",
        tenant="my-app",
        api_key=KEY,
        base_url=base_url,
        default_model="gpt-4o-mini",
        priority=1,
        timeout=0.3,
    )
    await orch.create_provider(
        type="anthropic",
        name="claude",
        tenant="my-app",
        api_key="k" * 20,
        base_url=anthropic_up.base_url,
        default_model="claude-3-5-haiku-latest",
        priority=2,
    )
    r = await orch.chat("Hello", tenant="my-app")
    assert r.provider == "claude"
    assert r.content == "[an] you said: Hello"
    expected = {"503": "ProviderUnavailable", "timeout": "ProviderTimeout", "refused": "ProviderUnavailable"}[
        fault
    ]
    assert r.metadata["failed_attempts"][0]["error"] == expected
    stats = orch.get_statistics("my-app")
    assert stats.providers["my-app/gpt"].requests == 1
    assert stats.providers["my-app/gpt"].errors == 1
    assert stats.providers["my-app/gpt"].errors_by_type == {expected: 1}
    assert stats.providers["my-app/claude"].requests == 1
    assert stats.providers["my-app/claude"].successes == 1
    assert stats.total_requests == 1 and stats.total_errors == 0


async def test_all_failed_is_typed_with_attempts(
    orch: Orchestrator, openai_up: SimulatedOpenAI, anthropic_up: SimulatedAnthropic
) -> None:
    await two_providers(orch, openai_up, anthropic_up)
    openai_up.fail(500)
    anthropic_up.fail(
        529, body={"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    )
    with pytest.raises(AllProvidersFailed) as info:
        await orch.chat("Hello", tenant="my-app")
    errors = [type(a.error) for a in info.value.attempts]
    assert errors == [ProviderUnavailable, ProviderUnavailable]
    assert "Overloaded" in str(info.value.attempts[1].error)


async def test_retry_round_recovers_a_single_provider(openai_up: SimulatedOpenAI) -> None:
    async with Orchestrator(retry=RetryPolicy(max_retries=2, backoff_base=0.01)) as orch:
        await orch.create_provider(
            type="openai", name="gpt", api_key=KEY, base_url=openai_up.base_url, default_model="gpt-4o-mini"
        )
        openai_up.fail(503, times=2)
        r = await orch.chat("Hi")
        assert r.content == "[oa] you said: Hi"
        assert len(openai_up.requests) == 3


async def test_rate_limited_with_retry_after_is_retried_after_waiting(openai_up: SimulatedOpenAI) -> None:
    async with Orchestrator(retry=RetryPolicy(max_retries=1, backoff_base=0.0)) as orch:
        await orch.create_provider(
            type="openai", name="gpt", api_key=KEY, base_url=openai_up.base_url, default_model="gpt-4o-mini"
        )
        openai_up.fail(
            429,
            headers={"retry-after": "0.2"},
            times=1,
            body={"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit"}},
        )
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        r = await orch.chat("Hi")
        assert r.content == "[oa] you said: Hi"
        assert loop.time() - t0 >= 0.2  # it waited as asked rather than hammering the provider


async def test_load_balancing_equal_priority(orch: Orchestrator) -> None:
    async with SimulatedOpenAI("one") as a, SimulatedOpenAI("two") as b:
        for name, up in (("p1", a), ("p2", b)):
            await orch.create_provider(
                type="openai", name=name, api_key=KEY, base_url=up.base_url, default_model="m"
            )
        providers = [(await orch.chat("x")).provider for _ in range(4)]
        assert sorted(providers) == ["p1", "p1", "p2", "p2"]
        assert len(a.requests) == len(b.requests) == 2


async def test_tenants_are_isolated(orch: Orchestrator, openai_up: SimulatedOpenAI) -> None:
    await orch.create_provider(
        type="openai",
        name="gpt",
        tenant="tenant-a",
        api_key=KEY,
        base_url=openai_up.base_url,
        default_model="m",
    )
    assert [p.name for p in orch.list_providers("tenant-a")] == ["gpt"]
    assert orch.list_providers("tenant-b") == []
    with pytest.raises(NoHealthyProviders):
        await orch.chat("hi", tenant="tenant-b")
    with pytest.raises(NotFound):
        orch.get_provider("gpt", tenant="tenant-b")
    with pytest.raises(NotFound):
        await orch.chat("hi", tenant="tenant-b", provider="gpt")
    # The same name may exist in another tenant, with other settings.
    await orch.create_provider(
        type="openai",
        name="gpt",
        tenant="tenant-b",
        api_key="sk-other-key-000000000",
        base_url=openai_up.base_url,
        default_model="other",
    )
    r = await orch.chat("hi", tenant="tenant-b")
    assert r.model == "other"


async def test_provider_crud_masks_secrets(orch: Orchestrator, openai_up: SimulatedOpenAI) -> None:
    info = await orch.create_provider(
        type="openai",
        name="gpt",
        api_key=KEY,
        base_url=openai_up.base_url,
        defaultModel="gpt-4o-mini",
        organization="org-123",
    )
    assert info.api_key is not None and KEY not in info.api_key and info.api_key.endswith(KEY[-4:])
    assert info.default_model == "gpt-4o-mini"
    assert KEY not in repr(orch.list_providers())
    with pytest.raises(Conflict):
        await orch.create_provider(type="openai", name="gpt", api_key=KEY, base_url=openai_up.base_url)
    updated = await orch.update_provider("gpt", default_model="gpt-4o", priority=5)
    assert (updated.default_model, updated.priority, updated.api_key) == ("gpt-4o", 5, info.api_key)
    r = await orch.chat("hi")
    assert r.model == "gpt-4o"
    assert openai_up.requests[-1].headers["OpenAI-Organization"] == "org-123"
    assert openai_up.requests[-1].headers["Authorization"] == f"Bearer {KEY}"
    await orch.remove_provider("gpt")
    assert orch.list_providers() == []
    with pytest.raises(NotFound):
        await orch.remove_provider("gpt")


async def test_invalid_provider_settings_are_listed(orch: Orchestrator) -> None:
    with pytest.raises(RequestError, match=r"unknown provider type 'nope'.*openai"):
        await orch.create_provider(type="nope", name="x")
    with pytest.raises(RequestError) as info:
        await orch.create_provider(type="openai", name="x", base_url="ftp://x", priority="high", colour="red")
    msg = str(info.value)
    assert "base_url" in msg and "priority" in msg
    with pytest.raises(RequestError, match="colour"):
        await orch.create_provider(type="openai", name="x", colour="red")


async def test_local_server_types(orch: Orchestrator) -> None:
    lm = await orch.create_provider(type="local", name="lm", serverType="lmstudio", default_model="qwen")
    assert (lm.type, lm.base_url) == ("openai", "http://localhost:1234/v1")
    ol = await orch.create_provider(type="local", name="ol", server_type="ollama", default_model="llama3")
    assert (ol.type, ol.base_url) == ("ollama", "http://localhost:11434")
    with pytest.raises(RequestError, match="serverType"):
        await orch.create_provider(type="local", name="zz", server_type="winamp")


async def test_model_routing(
    orch: Orchestrator, openai_up: SimulatedOpenAI, anthropic_up: SimulatedAnthropic
) -> None:
    await two_providers(orch, openai_up, anthropic_up)
    r = await orch.chat("hi", tenant="my-app", model="claude-3-5-haiku-latest")
    assert r.provider == "claude"
    r = await orch.chat("hi", tenant="my-app", model="gpt/gpt-4.1")
    assert (r.provider, r.model) == ("gpt", "gpt-4.1")
    await orch.update_provider("gpt", tenant="my-app", models=["gpt-4o-mini"])
    await orch.update_provider("claude", tenant="my-app", models=["claude-3-5-haiku-latest"])
    with pytest.raises(ModelNotFound):
        await orch.chat("hi", tenant="my-app", model="llama-9000")


async def test_embeddings_and_completions(
    orch: Orchestrator, openai_up: SimulatedOpenAI, anthropic_up: SimulatedAnthropic
) -> None:
    await two_providers(orch, openai_up, anthropic_up, embedding_model="text-embedding-3-small")
    e = await orch.embed(["a", "b", "c"], tenant="my-app", dimensions=8)
    assert (len(e.embeddings), e.dimensions, e.provider) == (3, 8, "gpt")
    c = await orch.complete("Say this", tenant="my-app")
    assert c.text == "[oa] you said: Say this" and c.usage.completion_tokens > 0
    c = await orch.complete("Say that", tenant="my-app", provider="claude")
    assert c.text == "[an] you said: Say that"


async def test_bad_arguments_are_request_errors(orch: Orchestrator) -> None:
    await orch.add_provider(MockProvider("m"))
    with pytest.raises(RequestError, match="messages"):
        await orch.chat([{"role": "wizard", "content": "x"}])
    with pytest.raises(RequestError, match="max_tokens"):
        await orch.chat("x", max_tokens=0)
    with pytest.raises(RequestError, match="tools"):
        await orch.chat("x", tools=[{"type": "function"}])
    with pytest.raises(RequestError, match="input"):
        await orch.embed([])


async def test_test_provider(orch: Orchestrator, openai_up: SimulatedOpenAI) -> None:
    await orch.create_provider(type="openai", name="gpt", api_key=KEY, base_url=openai_up.base_url)
    ok = await orch.test_provider("gpt")
    assert ok.success and "gpt-4o-mini" in ok.models and ok.latency_ms > 0
    openai_up.fail(401, body={"error": {"message": "Incorrect API key provided", "code": "invalid_api_key"}})
    bad = await orch.test_provider("gpt")
    assert (
        not bad.success and bad.error_type == "ProviderAuthError" and "Incorrect API key" in (bad.error or "")
    )


async def test_timeout_bounds_the_whole_request(orch: Orchestrator, openai_up: SimulatedOpenAI) -> None:
    await orch.create_provider(
        type="openai", name="gpt", api_key=KEY, base_url=openai_up.base_url, default_model="m", timeout=30
    )
    openai_up.fail(200, delay=1.0)
    with pytest.raises(AllProvidersFailed) as info:
        await orch.chat("hi", timeout=0.2)
    assert isinstance(info.value.attempts[0].error, ProviderTimeout)


async def test_providers_from_builtin_templates(orch: Orchestrator, openai_up: SimulatedOpenAI) -> None:
    info = await orch.create_provider_from_template(
        "openai", "gpt", "my-app", {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": openai_up.base_url}
    )
    assert (info.type, info.default_model, info.api_key) == ("openai", "gpt-4o-mini", "sk-...CRET")
    r = await orch.chat("templated", tenant="my-app")
    assert r.content == "[oa] you said: templated"
    lm = await orch.create_provider_from_template("lmstudio", "lm", "my-app", {"LMSTUDIO_MODEL": "qwen"})
    assert (lm.type, lm.base_url, lm.default_model) == ("openai", "http://localhost:1234/v1", "qwen")
    with pytest.raises(RequestError, match="ANTHROPIC_API_KEY"):
        await orch.create_provider_from_template("anthropic", "claude", "my-app", {})
    with pytest.raises(NotFound, match=r"valid: .*openai"):
        await orch.create_provider_from_template("nope", "x", "my-app", {})


async def test_an_outage_opens_the_circuit_and_health_says_so(
    orch: Orchestrator, openai_up: SimulatedOpenAI, anthropic_up: SimulatedAnthropic
) -> None:
    await two_providers(orch, openai_up, anthropic_up)
    openai_up.fail(503, times=1000)
    for i in range(8):
        r = await orch.chat(f"q{i}", tenant="my-app")
        assert r.provider == "claude"
    # Five consecutive faults open the circuit; after that the dead provider is not called at all.
    assert len(openai_up.requests) == 5
    health = orch.get_provider_health("gpt", "my-app")
    assert (health.circuit, health.healthy, health.status) == ("open", False, "unhealthy")
    assert health.error_rate == 1.0 and health.errors_by_class == {"ProviderUnavailable": 5}
    summary = orch.get_health_summary("my-app")
    assert (summary.total_providers, summary.healthy, summary.unhealthy) == (2, 1, 1)
    with pytest.raises(NotFound):
        orch.get_provider_health("gpt", "other-tenant")
