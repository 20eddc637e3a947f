"""Health shared between replicas through the state store (in-process, and the real Redis)."""

from __future__ import annotations

import random

from podium.errors import ProviderUnavailable
from podium.health.config import BreakerSettings, HealthSettings
from podium.health.monitor import HealthMonitor
from podium.health.registry import HealthRegistry, Permit
from podium.health.sync import HealthSync
from podium.state import StateStore
from podium.testing import SimulatedOpenAI
from tests.health.faults import openai_provider

SETTINGS = HealthSettings(breaker=BreakerSettings(consecutive_failures=3, min_requests=100, open_seconds=30))


def record(health: HealthRegistry, ok: int, faults: int = 0) -> None:
    for _ in range(ok):
        permit = health.admit("t1", "p", "m")
        assert isinstance(permit, Permit)
        health.succeeded(permit, 120.0)
    for _ in range(faults):
        permit = health.admit("t1", "p", "m")
        assert isinstance(permit, Permit)
        health.failed(permit, ProviderUnavailable("down", provider="p"))


async def test_every_replica_reports_everyones_traffic(stores: tuple[StateStore, StateStore]) -> None:
    a, b = HealthRegistry(SETTINGS), HealthRegistry(SETTINGS)
    sync_a, sync_b = HealthSync(a, stores[0], "A"), HealthSync(b, stores[1], "B")
    record(a, ok=5)
    record(b, ok=3, faults=1)
    for s in (sync_a, sync_b, sync_a):
        await s.sync_once()
    for health in (a, b):
        report = health.provider_health("t1", "p")
        assert (report.requests, report.successes, report.replicas) == (9, 8, 2)
        assert report.errors_by_class == {"ProviderUnavailable": 1}
        assert report.models["m"].requests == 9


async def test_a_circuit_opened_on_one_replica_is_skipped_on_the_other(
    stores: tuple[StateStore, StateStore],
) -> None:
    a, b = HealthRegistry(SETTINGS), HealthRegistry(SETTINGS)
    sync_a, sync_b = HealthSync(a, stores[0], "A"), HealthSync(b, stores[1], "B")
    await sync_b.sync_once()
    record(a, ok=0, faults=3)
    assert a.provider_health("t1", "p").circuit == "open"
    await sync_a.sync_once()
    await sync_b.sync_once()
    blocked = b.admit("t1", "p", "m")
    assert not isinstance(blocked, Permit)
    assert 29 < blocked.retry_after <= 30
    assert "consecutive failures" in blocked.reason
    assert b.provider_health("t1", "p").status == "unhealthy"


async def test_a_replica_that_leaves_drops_out(stores: tuple[StateStore, StateStore]) -> None:
    a, b = HealthRegistry(SETTINGS), HealthRegistry(SETTINGS)
    sync_a, sync_b = HealthSync(a, stores[0], "A"), HealthSync(b, stores[1], "B")
    record(a, ok=4)
    await sync_a.sync_once()
    await sync_b.sync_once()
    assert b.provider_health("t1", "p").requests == 4
    await sync_a.leave()
    await sync_b.sync_once()
    assert (b.provider_health("t1", "p").requests, b.provider_health("t1", "p").replicas) == (0, 1)


async def test_only_one_replica_probes_a_provider_per_interval(stores: tuple[StateStore, StateStore]) -> None:
    settings = HealthSettings(check_jitter=0.0)
    async with SimulatedOpenAI("up") as up:
        provider = openai_provider("p", up.base_url, priority=1)
        a, b = HealthRegistry(settings), HealthRegistry(settings)
        mon_a = HealthMonitor(a, lambda: [provider], interval=60, store=stores[0], rng=random.Random(1))
        mon_b = HealthMonitor(b, lambda: [provider], interval=60, store=stores[1], rng=random.Random(2))
        for _ in range(3):
            assert await mon_a.probe_due() + await mon_b.probe_due() <= 2
            await mon_a.wait_probes()
            await mon_b.wait_probes()
        probes = [r for r in up.requests if r.path == "/v1/models"]
        assert len(probes) == 1  # two replicas, three rounds: one probe in the interval
        assert mon_a.sync is not None and mon_b.sync is not None
        await mon_a.sync.sync_once()
        await mon_b.sync.sync_once()
        await mon_a.sync.sync_once()
        for health in (a, b):
            check = health.provider_health("t1", "p").last_check
            assert check is not None and check.success
        await mon_a.stop()
        await mon_b.stop()
        await provider.aclose()
