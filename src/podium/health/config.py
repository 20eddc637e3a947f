"""``HealthSettings``: rolling-window, circuit-breaker, probe and deadline settings.

Mounted in ``Settings`` as ``health``. Every key has a default; camelCase spellings work too.
"""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel


class _Section(BaseModel):
    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, alias_generator=to_camel, frozen=True, validate_default=True
    )


class BreakerSettings(_Section):
    """When a circuit opens, how long it stays open, and how it closes again.

    A circuit opens when, over the last ``window`` seconds, at least ``min_requests`` attempts were made
    and at least ``failure_ratio`` of them failed with a provider fault; or after
    ``consecutive_failures`` faults in a row; or for as long as a 429 answer's Retry-After asks.
    After ``open_seconds`` (doubling on each reopening, up to ``max_open_seconds``) it turns half-open:
    up to ``half_open_trials`` requests go through at a time, and ``close_after`` successes close it.
    A fault while half-open reopens it.
    """

    enabled: bool = True
    window: float = Field(default=60.0, gt=0, description="Seconds of history the error ratio covers.")
    min_requests: int = Field(default=10, ge=1)
    failure_ratio: float = Field(default=0.5, gt=0, le=1)
    consecutive_failures: int = Field(default=5, ge=1)
    open_seconds: float = Field(default=15.0, gt=0)
    max_open_seconds: float = Field(default=300.0, gt=0)
    half_open_trials: int = Field(default=1, ge=1)
    close_after: int = Field(default=1, ge=1, description="Successful trials that close a half-open circuit.")
    max_retry_after: float = Field(
        default=3600.0, gt=0, description="Longest Retry-After honoured when opening on a 429."
    )

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.max_open_seconds < self.open_seconds:
            raise ValueError("max_open_seconds must be at least open_seconds")
        if self.close_after > self.half_open_trials:
            # close_after counts successes among concurrent trials; more than can run at once never closes.
            raise ValueError("close_after cannot exceed half_open_trials")
        return self


class HealthSettings(_Section):
    """``health``: statistics window, circuit breakers, active probes, deadlines, cross-replica sharing.

    Attributes:
        window: Seconds the rolling statistics (latency percentiles, error rate, throughput) cover.
        breaker: Circuit-breaker thresholds (per provider and per provider+model).
        check_interval: Seconds between active probes of each provider; None uses
            ``performance.health_check_interval``.
        check_jitter: Fraction of the interval added or removed at random, so probes spread out.
        probe_timeout: Seconds a probe may take.
        degraded_error_rate: Error rate (with at least ``breaker.min_requests`` attempts) from which a
            provider is reported degraded.
        degraded_latency_ms: p95 latency from which a provider is reported degraded (None: never).
        request_deadline: Seconds a request may take, every failover attempt and retry included, when the
            caller sets no timeout (None: no default deadline).
        stream_idle_timeout: Longest gap between two chunks of a stream (None: the provider's ``timeout``).
        sync_interval: Seconds between exchanges of health with other replicas through the state store.
        key_prefix: Prefix of the state-store keys health uses (after the store's own prefix).
    """

    window: float = Field(default=300.0, gt=0)
    breaker: BreakerSettings = Field(default_factory=BreakerSettings)
    check_interval: float | None = Field(default=None, gt=0)
    check_jitter: float = Field(default=0.1, ge=0, lt=1)
    probe_timeout: float = Field(default=10.0, gt=0)
    degraded_error_rate: float = Field(default=0.1, gt=0, le=1)
    degraded_latency_ms: float | None = Field(default=None, gt=0)
    request_deadline: float | None = Field(default=300.0, gt=0)
    stream_idle_timeout: float | None = Field(default=None, gt=0)
    sync_interval: float = Field(default=2.0, gt=0)
    key_prefix: str = Field(default="health", min_length=1)
