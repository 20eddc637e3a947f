"""Prometheus metrics: recorded along the request path, exposed as text a Prometheus parser reads."""

from __future__ import annotations

import json
import random
import re

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from podium.backend import CallContext, flatten
from podium.errors import AllProvidersFailed, ProviderUnavailable
from podium.health.config import BreakerSettings, HealthSettings
from podium.health.registry import HealthRegistry
from podium.health.stats import StatsRecorder
from podium.observability import PodiumMetrics
from podium.observability.series import CounterSeries, GaugeSeries, HistogramSeries
from podium.routing.retry import RetryPolicy
from podium.routing.router import Router
from podium.routing.strategies.priority import PriorityStrategy
from podium.testing import MockProvider
from podium.types import ChatRequest, Message


def samples(metrics: PodiumMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = metrics.render().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(metrics: PodiumMetrics, name: str, **labels: str) -> float | None:
    return samples(metrics).get((name, frozenset(labels.items())))


@pytest.fixture
def stack() -> tuple[Router, PodiumMetrics, MockProvider]:
    a = MockProvider("a", priority=1, failures=[ProviderUnavailable("down")] * 2)
    b = MockProvider("b", "four words answer here", priority=2)
    health = HealthRegistry(HealthSettings(breaker=BreakerSettings(consecutive_failures=2)))
    metrics = PodiumMetrics()
    metrics.watch_health(health)
    router = Router(
        "t1",
        lambda: [a, b],
        PriorityStrategy(),
        RetryPolicy(max_retries=0),
        StatsRecorder(),
        health=health,
        metrics=metrics,
        rng=random.Random(1),
    )
    return router, metrics, b


def req() -> ChatRequest:
    return ChatRequest(messages=[Message(role="user", content="hi there")])


async def test_request_path_metrics_parse_and_add_up(
    stack: tuple[Router, PodiumMetrics, MockProvider],
) -> None:
    router, metrics, _ = stack
    for _ in range(3):
        await router.chat(req(), CallContext(tenant="t1"))
    chunks = [c async for c in flatten(router.stream(req(), CallContext(tenant="t1")))]
    assert chunks[-1].usage is not None
    m = metrics
    assert value(m, "podium_requests_total", tenant="t1", kind="chat", outcome="ok") == 3
    assert value(m, "podium_requests_total", tenant="t1", kind="stream", outcome="ok") == 1
    assert (
        value(
            m,
            "podium_upstream_requests_total",
            tenant="t1",
            provider="a",
            model="mock-model",
            outcome="error",
        )
        == 2
    )
    assert (
        value(
            m, "podium_upstream_requests_total", tenant="t1", provider="b", model="mock-model", outcome="ok"
        )
        == 4
    )
    assert (
        value(
            m,
            "podium_upstream_errors_total",
            tenant="t1",
            provider="a",
            model="mock-model",
            error="ProviderUnavailable",
        )
        == 2
    )
    assert value(m, "podium_circuit_skips_total", tenant="t1", provider="a") == 2  # third chat and the stream
    assert value(m, "podium_circuit_state", tenant="t1", provider="a", model="") == 2  # open
    assert value(m, "podium_circuit_state", tenant="t1", provider="b", model="") == 0
    assert value(m, "podium_provider_healthy", tenant="t1", provider="a") == 0
    assert (
        value(m, "podium_tokens_total", tenant="t1", provider="b", model="mock-model", kind="completion")
        == 16
    )
    assert value(m, "podium_in_flight_requests", tenant="t1") == 0
    assert value(m, "podium_request_duration_seconds_count", tenant="t1", kind="chat") == 3
    assert value(m, "podium_overhead_seconds_count", tenant="t1") == 4
    assert (
        value(m, "podium_upstream_latency_seconds_count", tenant="t1", provider="b", model="mock-model") == 4
    )


async def test_failed_request_and_recorders_for_other_layers() -> None:
    a = MockProvider("a", failures=[ProviderUnavailable("down")])
    metrics = PodiumMetrics()
    router = Router(
        "t1", lambda: [a], PriorityStrategy(), RetryPolicy(max_retries=0), StatsRecorder(), metrics=metrics
    )
    with pytest.raises(AllProvidersFailed):
        await router.chat(req(), CallContext(tenant="t1"))
    metrics.record_cost("t1", "a", "gpt-4o", 0.25)
    metrics.record_cost("t1", "a", "gpt-4o", 0.5)
    metrics.record_rate_limited("t1", "tenant")
    metrics.record_budget_rejected("t1")
    queued = [7]
    metrics.watch_record_queue(lambda: queued[0])
    assert value(metrics, "podium_requests_total", tenant="t1", kind="chat", outcome="error") == 1
    assert value(metrics, "podium_request_errors_total", tenant="t1", error="AllProvidersFailed") == 1
    assert value(metrics, "podium_cost_usd_total", tenant="t1", provider="a", model="gpt-4o") == 0.75
    assert value(metrics, "podium_rate_limit_rejections_total", tenant="t1", scope="tenant") == 1
    assert value(metrics, "podium_budget_rejections_total", tenant="t1") == 1
    assert value(metrics, "podium_record_queue_depth") == 7
    queued[0] = 2
    assert value(metrics, "podium_record_queue_depth") == 2  # read at scrape time


async def test_json_snapshot_and_registries_are_per_instance(
    stack: tuple[Router, PodiumMetrics, MockProvider],
) -> None:
    router, metrics, _ = stack
    await router.chat(req(), CallContext(tenant="t1"))
    snap = json.loads(json.dumps(metrics.snapshot()))
    ok = [s for s in snap["podium_requests"]["samples"] if s["name"] == "podium_requests_total"]
    assert ok == [
        {
            "name": "podium_requests_total",
            "labels": {"tenant": "t1", "kind": "chat", "outcome": "ok"},
            "value": 1.0,
        }
    ]
    assert snap["podium_circuit_state"]["type"] == "gauge"
    other = PodiumMetrics()  # a second orchestrator's metrics: its own registry, nothing shared
    assert value(other, "podium_requests_total", tenant="t1", kind="chat", outcome="ok") is None


def _exposition(registry: CollectorRegistry) -> str:
    text = generate_latest(registry).decode()
    return re.sub(r"(_created\{[^}]*\}) \S+", r"\1 T", text)  # creation times differ by construction


def test_series_are_exposed_exactly_as_prometheus_clients_own_classes() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    bounds = (0.001, 0.5, 1.0, 2.5)
    hist = HistogramSeries("x_seconds", "Time", ("tenant", "kind"), bounds)
    count = CounterSeries("x_calls", "Calls", ("tenant",))
    gauge = GaugeSeries("x_open", "Open", ("tenant",))
    for family in (hist, count, gauge):
        ours.register(family)
    ref_hist = Histogram("x_seconds", "Time", ["tenant", "kind"], registry=theirs, buckets=bounds)
    ref_count = Counter("x_calls", "Calls", ["tenant"], registry=theirs)
    ref_gauge = Gauge("x_open", "Open", ["tenant"], registry=theirs)
    # Values on a bound belong to that bound's bucket; above the last bound, to +Inf.
    seen = [("a", "chat", 0.001), ("a", "chat", 0.0005), ("a", "chat", 0.75), ("b", "stream", 2.5),
            ("b", "stream", 99.0), ("a", "chat", 1.0)]  # fmt: skip
    for tenant, kind, seconds in seen:
        hist.observe((tenant, kind), seconds)
        ref_hist.labels(tenant, kind).observe(seconds)
        count.inc((tenant,), 2)
        ref_count.labels(tenant).inc(2)
        gauge.add((tenant,), 1)
        ref_gauge.labels(tenant).inc()
    gauge.add(("a",), -1)
    ref_gauge.labels("a").dec()
    assert _exposition(ours) == _exposition(theirs)
    assert ours.get_sample_value("x_seconds_bucket", {"tenant": "a", "kind": "chat", "le": "0.001"}) == 2
    assert ours.get_sample_value("x_seconds_count", {"tenant": "b", "kind": "stream"}) == 2
    assert ours.get_sample_value("x_open", {"tenant": "a"}) == 3
