"""What health reports look like: one provider's health, and the summary over all of them."""

from __future__ import annotations

from typing import Literal

import msgspec

from podium.health.breaker import CircuitState

HealthStatus = Literal["healthy", "degraded", "unhealthy"]


class ProbeResult(msgspec.Struct, kw_only=True):
    """The last active health check of a provider.

    Attributes:
        success: Whether the probe got an answer.
        latency_ms: How long it took.
        error: What went wrong, when it failed.
        checked_at: Wall-clock time (Unix seconds) of the probe.
    """

    success: bool
    latency_ms: float
    error: str | None = None
    checked_at: float = 0.0


class ModelHealth(msgspec.Struct, kw_only=True):
    """Health of one model at a provider (its own circuit and figures)."""

    model: str
    circuit: CircuitState
    retry_after: float
    requests: int
    error_rate: float
    avg_latency_ms: float
    p95_latency_ms: float


class ProviderHealth(msgspec.Struct, kw_only=True):
    """A provider's health over the rolling window (every replica's traffic when shared).

    Attributes:
        status: ``unhealthy`` (circuit open, or its probes fail with no success since), ``degraded``
            (circuit half-open, error rate or p95 latency above their thresholds), else ``healthy``.
        healthy: Whether requests are routed to it now (status is not ``unhealthy``).
        circuit: ``closed``, ``open`` or ``half_open``.
        circuit_reason: Why the circuit last opened (while it is not closed).
        retry_after: Seconds until an open circuit lets requests through again.
        requests: Attempts in the window.
        error_rate: Provider faults among judged attempts (the callers' own mistakes excluded).
        errors_by_class: Failed attempts per error class (``ProviderTimeout``, ...).
        throughput_rps: Attempts per second over the window.
        seconds_since_success: Since the last successful request or probe (None: none seen).
        last_check: The latest active probe.
        models: Per-model circuits and figures.
        replicas: How many podium processes' figures are included.
    """

    tenant: str
    provider: str
    status: HealthStatus
    healthy: bool
    circuit: CircuitState
    circuit_reason: str | None
    retry_after: float
    window_seconds: float
    requests: int
    successes: int
    errors: int
    error_rate: float
    errors_by_class: dict[str, int]
    avg_latency_ms: float
    p50_latency_ms: float
    p95_latency_ms: float
    p99_latency_ms: float
    throughput_rps: float
    seconds_since_success: float | None
    last_error: str | None
    last_check: ProbeResult | None
    models: dict[str, ModelHealth]
    replicas: int


class HealthSummary(msgspec.Struct, kw_only=True):
    """Counts of providers by status, and each provider's health (keyed ``tenant/name``)."""

    total_providers: int
    healthy: int
    degraded: int
    unhealthy: int
    providers: dict[str, ProviderHealth]
