"""Active health checks against real local upstreams."""

from __future__ import annotations

import asyncio
import random

from podium.health.config import BreakerSettings, HealthSettings
from podium.health.monitor import HealthMonitor
from podium.health.registry import HealthRegistry
from podium.testing import MockProvider, SimulatedOpenAI
from tests.health.faults import openai_provider

SETTINGS = HealthSettings(
    check_jitter=0.0,
    probe_timeout=0.3,
    breaker=BreakerSettings(consecutive_failures=2, open_seconds=60),
)


async def test_probe_of_a_live_provider_reports_it_healthy() -> None:
    async with SimulatedOpenAI("up") as up:
        p = openai_provider("p", up.base_url, priority=1)
        health = HealthRegistry(SETTINGS)
        monitor = HealthMonitor(health, lambda: [p], interval=60)
        result = await monitor.test_provider(p)
        assert result.success and "gpt-4o-mini" in result.models
        report = health.provider_health("t1", "p")
        assert report.status == "healthy"
        assert report.last_check is not None and report.last_check.success
        assert report.seconds_since_success is not None and report.seconds_since_success < 5
        await p.aclose()


async def test_failing_probes_mark_unhealthy_open_the_circuit_and_recovery_half_opens_it() -> None:
    up = SimulatedOpenAI("up")
    await up.start()
    p = openai_provider("p", up.base_url, priority=1)
    await up.stop()  # connection refused from now on
    health = HealthRegistry(SETTINGS)
    monitor = HealthMonitor(health, lambda: [p], interval=60)
    first = await monitor.test_provider(p)
    assert (first.success, first.error_type) == (False, "ProviderUnavailable")
    report = health.provider_health("t1", "p")
    assert (report.status, report.healthy, report.circuit) == ("unhealthy", False, "closed")
    assert report.last_error is not None and "cannot connect" in report.last_error
    await monitor.test_provider(p)
    assert health.provider_health("t1", "p").circuit == "open"
    await up.start()  # back on the same port
    assert (await monitor.test_provider(p)).success
    report = health.provider_health("t1", "p")
    assert (report.circuit, report.status) == ("half_open", "degraded")  # real traffic decides the rest
    await p.aclose()
    await up.stop()


async def test_a_hanging_probe_is_cut_at_the_probe_timeout() -> None:
    slow = MockProvider("slow", latency=30)
    health = HealthRegistry(SETTINGS)
    monitor = HealthMonitor(health, lambda: [slow], interval=60)
    result = await asyncio.wait_for(monitor.test_provider(slow), timeout=10)
    assert (result.success, result.error_type) == (False, "ProviderTimeout")
    assert health.provider_health("default", "slow").status == "unhealthy"


async def test_background_loop_probes_on_schedule_and_stops_cleanly() -> None:
    async with SimulatedOpenAI("up") as up:
        p = openai_provider("p", up.base_url, priority=1)
        off = openai_provider("off", up.base_url, priority=2)
        object.__setattr__(off, "config", off.config.model_copy(update={"enabled": False}))
        health = HealthRegistry(HealthSettings(check_jitter=0.2))
        monitor = HealthMonitor(health, lambda: [p, off], interval=0.1, rng=random.Random(4))
        monitor.start()
        assert monitor.running
        await asyncio.sleep(0.6)
        await monitor.stop()
        assert not monitor.running
        count = len([r for r in up.requests if r.path == "/v1/models"])
        assert 2 <= count <= 8  # every 0.08-0.12 s over 0.6 s; the disabled provider never
        await asyncio.sleep(0.3)
        assert len([r for r in up.requests if r.path == "/v1/models"]) == count  # stopped means stopped
        await p.aclose()
        await off.aclose()
