"""OpenTelemetry: with an SDK configured by the application, requests and upstream attempts are spans."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

pytest.importorskip("opentelemetry.sdk", reason="the opentelemetry-sdk dev dependency is not installed")

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from podium import Orchestrator, RetryPolicy
from podium.testing import SimulatedOpenAI

EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module", autouse=True)
def _provider() -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
    trace.set_tracer_provider(provider)


@pytest.fixture
async def ups() -> AsyncIterator[tuple[SimulatedOpenAI, SimulatedOpenAI]]:
    async with SimulatedOpenAI("a") as a, SimulatedOpenAI("b") as b:
        yield a, b


async def test_a_failed_over_request_is_one_request_span_with_an_upstream_span_per_attempt(
    ups: tuple[SimulatedOpenAI, SimulatedOpenAI],
) -> None:
    a, b = ups
    EXPORTER.clear()
    async with Orchestrator(retry=RetryPolicy(max_retries=0)) as orch:
        for name, up, priority in (("first", a, 1), ("second", b, 2)):
            await orch.create_provider(
                type="openai", name=name, tenant="t", api_key="sk-trace-0123456789abcdef",
                base_url=up.base_url, default_model="gpt-4o-mini", priority=priority,
            )  # fmt: skip
        a.fail(503)
        r = await orch.chat("traced", tenant="t")
    assert r.provider == "second"
    spans = EXPORTER.get_finished_spans()
    request = [s for s in spans if s.name == "podium.request"]
    upstream = [s for s in spans if s.name == "podium.upstream"]
    assert len(request) == 1 and request[0].attributes is not None
    assert request[0].attributes["podium.tenant"] == "t"
    assert [s.attributes["podium.provider"] for s in upstream if s.attributes] == ["first", "second"]
    assert [s.status.status_code for s in upstream] == [StatusCode.ERROR, StatusCode.UNSET]
    assert all(s.parent is not None and s.parent.span_id == request[0].context.span_id for s in upstream)
