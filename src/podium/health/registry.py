"""The health registry: the router asks it before each attempt and tells it how each attempt ended.

Everything here is in memory and O(1) per attempt (no I/O on the request path); sharing with other
replicas happens in the background (``podium.health.sync``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from podium.errors import ProviderRateLimited
from podium.health.breaker import CircuitState
from podium.health.config import HealthSettings
from podium.health.report import HealthStatus, HealthSummary, ModelHealth, ProbeResult, ProviderHealth
from podium.health.tracker import ProviderTracker, fault_scope
from podium.health.window import WindowTotals
from podium.providers.base import CheckResult


@dataclass(slots=True)
class Permit:
    """Leave to make one attempt; hand it back through exactly one of succeeded / failed / released."""

    tracker: ProviderTracker
    model: str
    provider_trial: bool
    model_trial: bool


RATE_LIMITED = "rate limited by the provider"
"""How a circuit opened by a provider's 429 is described (the text travels to other replicas too)."""


@dataclass(frozen=True, slots=True)
class Blocked:
    """An attempt refused because a circuit is open.

    Attributes:
        retry_after: Seconds until the circuit lets a request through again.
        reason: Why it opened.
    """

    retry_after: float
    reason: str

    @property
    def rate_limited(self) -> bool:
        """Whether the provider itself asked to be left alone (a 429 with Retry-After), not a fault."""
        return self.reason.startswith(RATE_LIMITED)


class HealthRegistry:
    """Rolling statistics and circuits for every (tenant, provider) and (tenant, provider, model).

    Args:
        settings: Windows, thresholds and timings.
        clock: Wall-clock seconds (injectable for tests).
    """

    def __init__(
        self, settings: HealthSettings | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings or HealthSettings()
        self.clock = clock
        self._trackers: dict[tuple[str, str], ProviderTracker] = {}
        self.replicas_seen = 1

    def tracker(self, tenant: str, provider: str) -> ProviderTracker:
        """The tracker of one provider (created on first use)."""
        key = (tenant, provider)
        tracker = self._trackers.get(key)
        if tracker is None:
            tracker = self._trackers[key] = ProviderTracker(self.settings, self.clock)
        return tracker

    def forget(self, tenant: str, provider: str) -> None:
        """Drop a removed provider (a provider re-created under the name starts afresh)."""
        self._trackers.pop((tenant, provider), None)

    # ------------------------------------------------------------------ hot path

    def admit(self, tenant: str, provider: str, model: str) -> Permit | Blocked:
        """Ask whether one attempt may go to ``provider`` for ``model``."""
        tracker = self.tracker(tenant, provider)
        ok, p_trial = tracker.breaker.allow()
        if not ok:
            return Blocked(tracker.breaker.retry_after(), tracker.breaker.reason or "circuit open")
        m = tracker.model(model).breaker
        ok, m_trial = m.allow()
        if not ok:
            tracker.breaker.release(p_trial)
            return Blocked(m.retry_after(), m.reason or "circuit open")
        return Permit(tracker, model, p_trial, m_trial)

    def succeeded(self, permit: Permit, latency_ms: float) -> None:
        """The attempt returned an answer (for a stream: its first chunk arrived)."""
        now = self.clock()
        t = permit.tracker
        t.last_success = now
        t.window.success(now, latency_ms)
        mt = t.model(permit.model)
        mt.window.success(now, latency_ms)
        t.breaker.success(permit.provider_trial)
        mt.breaker.success(permit.model_trial)

    def failed(self, permit: Permit, error: BaseException) -> None:
        """The attempt failed with ``error`` (counted against health only when it is a provider fault)."""
        now = self.clock()
        t = permit.tracker
        mt = t.model(permit.model)
        scope = fault_scope(error)
        name = type(error).__name__
        t.window.failure(now, name, fault=scope == "provider")
        mt.window.failure(now, name, fault=scope is not None)
        if scope is None:
            self.released(permit)
            return
        t.last_error = str(error)
        if scope == "provider":
            t.breaker.fault(permit.provider_trial, name)
        else:
            t.breaker.release(permit.provider_trial)
        mt.breaker.fault(permit.model_trial, name)
        if isinstance(error, ProviderRateLimited) and error.retry_after:
            # The provider said when to come back: nobody should call it before then.
            t.breaker.trip(error.retry_after, f"{RATE_LIMITED} for {error.retry_after:g} s")

    def released(self, permit: Permit) -> None:
        """The attempt ended without telling anything about the upstream (cancelled, caller's error)."""
        permit.tracker.breaker.release(permit.provider_trial)
        permit.tracker.model(permit.model).breaker.release(permit.model_trial)

    def record_probe(self, tenant: str, provider: str, result: CheckResult) -> None:
        """Take in an active health check: a failure counts as a fault, a success ends an open period."""
        t = self.tracker(tenant, provider)
        t.probe = ProbeResult(
            success=result.success, latency_ms=result.latency_ms, error=result.error, checked_at=self.clock()
        )
        if result.success:
            t.probe_failures = 0
            if t.breaker.state == "open":
                t.breaker.trip_to_half_open()
        else:
            t.probe_failures += 1
            t.last_error = result.error
            t.breaker.fault(False, result.error_type or "probe failed")

    # ------------------------------------------------------------------- reports

    def provider_health(self, tenant: str, provider: str) -> ProviderHealth:
        """The provider's health over the window."""
        now = self.clock()
        t = self.tracker(tenant, provider)
        totals = t.totals(now)
        probe = t.newest_probe()
        circuit = t.breaker.state
        last_success = max(
            totals.last_success, t.last_success, probe.checked_at if probe and probe.success else 0.0
        )
        p95 = totals.percentile(0.95)
        status = self._status(circuit, probe, totals, p95)
        models = {
            name: self._model_health(t, name, now) for name in sorted({*t.models, *self._remote_models(t)})
        }
        last_error = t.last_error or next((v.last_error for v in t.remote.values() if v.last_error), None)
        return ProviderHealth(
            tenant=tenant,
            provider=provider,
            status=status,
            healthy=status != "unhealthy",
            circuit=circuit,
            circuit_reason=t.breaker.reason if circuit != "closed" else None,
            retry_after=t.breaker.retry_after(),
            window_seconds=self.settings.window,
            requests=totals.attempts,
            successes=totals.successes,
            errors=sum(totals.errors.values()),
            error_rate=totals.error_rate,
            errors_by_class=dict(totals.errors),
            avg_latency_ms=totals.avg_latency_ms,
            p50_latency_ms=totals.percentile(0.5),
            p95_latency_ms=p95,
            p99_latency_ms=totals.percentile(0.99),
            throughput_rps=totals.attempts / self.settings.window,
            seconds_since_success=max(0.0, now - last_success) if last_success else None,
            last_error=last_error,
            last_check=probe,
            models=models,
            replicas=1 + len(t.remote),
        )

    def summary(self, providers: Iterable[tuple[str, str]]) -> HealthSummary:
        """Health of the given ``(tenant, provider)`` pairs, with counts by status."""
        reports = {f"{t}/{p}": self.provider_health(t, p) for t, p in providers}
        statuses = [r.status for r in reports.values()]
        return HealthSummary(
            total_providers=len(reports),
            healthy=statuses.count("healthy"),
            degraded=statuses.count("degraded"),
            unhealthy=statuses.count("unhealthy"),
            providers=reports,
        )

    def circuits(self) -> Iterable[tuple[str, str, str, CircuitState]]:
        """Every circuit as ``(tenant, provider, model, state)``; model is ``""`` for the provider's own."""
        for (tenant, provider), t in list(self._trackers.items()):
            yield tenant, provider, "", t.breaker.state
            for model, mt in list(t.models.items()):
                yield tenant, provider, model, mt.breaker.state

    def _status(
        self,
        circuit: CircuitState,
        probe: ProbeResult | None,
        totals: WindowTotals,
        p95: float,
    ) -> HealthStatus:
        if circuit == "open":
            return "unhealthy"
        if probe is not None and not probe.success and totals.last_success < probe.checked_at:
            return "unhealthy"  # its latest sign of life is a failed probe
        if circuit == "half_open":
            return "degraded"
        judged = totals.successes + totals.faults
        if (
            judged >= self.settings.breaker.min_requests
            and totals.error_rate >= self.settings.degraded_error_rate
        ):
            return "degraded"
        limit = self.settings.degraded_latency_ms
        if limit is not None and p95 >= limit:
            return "degraded"
        return "healthy"

    @staticmethod
    def _remote_models(t: ProviderTracker) -> set[str]:
        return {m for v in t.remote.values() for m in v.models}

    def _model_health(self, t: ProviderTracker, name: str, now: float) -> ModelHealth:
        totals = t.model_totals(name, now)
        breaker = t.model(name).breaker
        return ModelHealth(
            model=name,
            circuit=breaker.state,
            retry_after=breaker.retry_after(),
            requests=totals.attempts,
            error_rate=totals.error_rate,
            avg_latency_ms=totals.avg_latency_ms,
            p95_latency_ms=totals.percentile(0.95),
        )

    # ------------------------------------------------------------------ sharing

    def export(self) -> dict[str, Any]:
        """This replica's own figures, for other replicas."""
        now = self.clock()
        return {f"{t}\x00{p}": tr.to_wire(now) for (t, p), tr in list(self._trackers.items())}

    def absorb(self, replicas: dict[str, dict[str, Any]]) -> None:
        """Replace other replicas' figures with ``replicas`` (replica id -> its ``export()``)."""
        # Each export holds a replica's whole window, so it replaces what that replica said before.
        for tracker in self._trackers.values():
            tracker.remote = {}
        for replica, data in replicas.items():
            for key, wire in data.items():
                tenant, _, provider = key.partition("\x00")
                self.tracker(tenant, provider).absorb(replica, wire)
        self.replicas_seen = 1 + len(replicas)
