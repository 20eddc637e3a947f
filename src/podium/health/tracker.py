"""Per-provider health state: rolling windows, circuits, probe results, and other replicas' figures.

Also decides which errors are the provider's fault: only those count against its health and circuit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from podium.errors import (
    ContextLengthExceeded,
    ProviderBadRequest,
    ProviderError,
    ProviderNotFound,
)
from podium.health.breaker import CircuitBreaker
from podium.health.config import HealthSettings
from podium.health.report import ProbeResult
from podium.health.window import RollingWindow, WindowTotals


def fault_scope(error: BaseException) -> str | None:
    """Where an error counts: ``"provider"``, ``"model"`` (that model only), or None (not a fault).

    The caller's mistakes (invalid request, prompt too long) and podium's own refusals (its rate limits,
    budgets) say nothing about the upstream; an unknown model says something about that model only.
    """
    if not isinstance(error, ProviderError):
        return None
    if isinstance(error, ProviderBadRequest | ContextLengthExceeded):
        return None
    if isinstance(error, ProviderNotFound):
        return "model"
    return "provider"


@dataclass(slots=True)
class RemoteView:
    """What another replica reported for one provider."""

    totals: WindowTotals
    models: dict[str, WindowTotals]
    probe: ProbeResult | None
    last_error: str | None


class ModelTracker:
    """One model's window and circuit at a provider."""

    def __init__(self, settings: HealthSettings, clock: Callable[[], float]) -> None:
        self.window = RollingWindow(settings.window)
        self.breaker = CircuitBreaker(settings.breaker, clock)


@dataclass(slots=True)
class ProviderTracker:
    """Everything health knows about one provider of one tenant."""

    settings: HealthSettings
    clock: Callable[[], float]
    window: RollingWindow = field(init=False)
    breaker: CircuitBreaker = field(init=False)
    models: dict[str, ModelTracker] = field(default_factory=dict)
    probe: ProbeResult | None = None
    probe_failures: int = 0
    last_success: float = 0.0
    last_error: str | None = None
    remote: dict[str, RemoteView] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.window = RollingWindow(self.settings.window)
        self.breaker = CircuitBreaker(self.settings.breaker, self.clock)

    def model(self, name: str) -> ModelTracker:
        """The tracker of one model (created on first use)."""
        tracker = self.models.get(name)
        if tracker is None:
            tracker = self.models[name] = ModelTracker(self.settings, self.clock)
        return tracker

    def totals(self, now: float) -> WindowTotals:
        """This replica's window plus every other replica's."""
        out = self.window.totals(now)
        for view in self.remote.values():
            out.add(view.totals)
        return out

    def model_totals(self, name: str, now: float) -> WindowTotals:
        """One model's window, all replicas included."""
        local = self.models.get(name)
        out = local.window.totals(now) if local is not None else WindowTotals()
        for view in self.remote.values():
            if name in view.models:
                out.add(view.models[name])
        return out

    def newest_probe(self) -> ProbeResult | None:
        """The most recent probe by any replica."""
        probes = [p for p in [self.probe, *(v.probe for v in self.remote.values())] if p is not None]
        return max(probes, key=lambda p: p.checked_at) if probes else None

    def to_wire(self, now: float) -> dict[str, Any]:
        """This replica's own figures and open circuits, for the state store."""
        return {
            "w": self.window.totals(now).to_wire(),
            "m": {m: t.window.totals(now).to_wire() for m, t in self.models.items()},
            "c": [self.breaker.own_open_until, self.breaker.reason],
            "mc": {m: [t.breaker.own_open_until, t.breaker.reason] for m, t in self.models.items()},
            "p": None if self.probe is None else msgspec_probe(self.probe),
            "le": self.last_error,
        }

    def absorb(self, replica: str, data: dict[str, Any]) -> None:
        """Take in another replica's figures, and open the circuits it has open."""
        probe = data.get("p")
        self.remote[replica] = RemoteView(
            totals=WindowTotals.from_wire(data["w"]),
            models={m: WindowTotals.from_wire(w) for m, w in data["m"].items()},
            probe=None if probe is None else ProbeResult(**probe),
            last_error=data.get("le"),
        )
        until, reason = data["c"]
        if until:
            self.breaker.open_remote(float(until), reason)
        for m, (until, reason) in data["mc"].items():
            if until:
                self.model(m).breaker.open_remote(float(until), reason)


def msgspec_probe(probe: ProbeResult) -> dict[str, Any]:
    """A probe result as plain data."""
    return {
        "success": probe.success,
        "latency_ms": probe.latency_ms,
        "error": probe.error,
        "checked_at": probe.checked_at,
    }
