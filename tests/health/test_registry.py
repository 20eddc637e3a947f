"""Health reports: figures over the window, status rules, the summary."""

from __future__ import annotations

import pytest

from podium.errors import ProviderRateLimited, ProviderTimeout, ProviderUnavailable
from podium.health.config import BreakerSettings, HealthSettings
from podium.health.registry import HealthRegistry, Permit
from podium.providers.base import CheckResult


class Clock:
    def __init__(self) -> None:
        self.now = 5_000.0

    def __call__(self) -> float:
        return self.now


def make(**kw: object) -> tuple[HealthRegistry, Clock]:
    clock = Clock()
    settings = HealthSettings.model_validate(
        {"window": 60, "breaker": {"consecutive_failures": 50, "min_requests": 10}, **kw}
    )
    return HealthRegistry(settings, clock=clock), clock


def ok(h: HealthRegistry, provider: str, latency: float, model: str = "m") -> None:
    permit = h.admit("t", provider, model)
    assert isinstance(permit, Permit)
    h.succeeded(permit, latency)


def fail(h: HealthRegistry, provider: str, error: Exception, model: str = "m") -> None:
    permit = h.admit("t", provider, model)
    assert isinstance(permit, Permit)
    h.failed(permit, error)


def test_figures_over_the_window() -> None:
    h, clock = make()
    for ms in range(1, 101):
        ok(h, "p", float(ms * 10))
    fail(h, "p", ProviderTimeout("slow"))
    clock.now += 12
    r = h.provider_health("t", "p")
    assert (r.requests, r.successes, r.errors) == (101, 100, 1)
    assert r.error_rate == pytest.approx(1 / 101)
    assert r.avg_latency_ms == pytest.approx(505)
    assert r.p50_latency_ms == pytest.approx(500, rel=0.13)
    assert r.p95_latency_ms == pytest.approx(950, rel=0.13)
    assert r.throughput_rps == pytest.approx(101 / 60)
    assert r.seconds_since_success == pytest.approx(12)
    assert r.errors_by_class == {"ProviderTimeout": 1}
    assert r.last_error == "slow"
    clock.now += 61
    assert h.provider_health("t", "p").requests == 0  # slid out of the window


def test_status_rules_and_summary() -> None:
    h, _ = make(degraded_latency_ms=1000)
    for _ in range(10):
        ok(h, "fine", 50)
        ok(h, "slow", 3000)
    for i in range(10):
        ok(h, "flaky", 50) if i % 3 else fail(h, "flaky", ProviderUnavailable("x"))
    fail(h, "limited", ProviderRateLimited("busy", retry_after=30))
    h.record_probe("t", "dead", CheckResult(success=False, latency_ms=3, error="refused", error_type="X"))
    s = h.summary([("t", n) for n in ("fine", "slow", "flaky", "limited", "dead", "unused")])
    status = {k: v.status for k, v in s.providers.items()}
    assert status == {
        "t/fine": "healthy",
        "t/slow": "degraded",
        "t/flaky": "degraded",
        "t/limited": "unhealthy",
        "t/dead": "unhealthy",
        "t/unused": "healthy",
    }
    assert (s.total_providers, s.healthy, s.degraded, s.unhealthy) == (6, 2, 2, 2)
    limited = s.providers["t/limited"]
    assert (limited.circuit, limited.retry_after) == ("open", 30)
    assert limited.circuit_reason is not None and "30 s" in limited.circuit_reason


def test_retry_after_is_capped_by_settings() -> None:
    h, _ = make(breaker=BreakerSettings(max_retry_after=60))
    fail(h, "p", ProviderRateLimited("busy", retry_after=86_400))
    assert h.provider_health("t", "p").retry_after == 60
