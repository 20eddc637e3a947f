"""Per-provider request statistics: attempts, successes, errors by class, latency, tokens.

Recorded in memory on every upstream attempt (a few integer additions, no I/O), read by
``Orchestrator.get_statistics()``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import msgspec

from podium.types import Usage


@dataclass(slots=True)
class _Counters:
    attempts: int = 0
    successes: int = 0
    errors: int = 0
    latency_ms_total: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    errors_by_type: Counter[str] = field(default_factory=Counter)
    last_error: str | None = None


class ProviderStatistics(msgspec.Struct, kw_only=True):
    """What one provider has done since start-up.

    Attributes:
        requests: Upstream attempts made to this provider (failover attempts included).
        successes: Attempts that returned an answer.
        errors: Attempts that failed.
        error_rate: errors / requests (0 when there were none).
        avg_latency_ms: Mean latency of successful attempts.
        errors_by_type: Failed attempts per error class name.
    """

    tenant: str
    provider: str
    requests: int
    successes: int
    errors: int
    error_rate: float
    avg_latency_ms: float
    prompt_tokens: int
    completion_tokens: int
    errors_by_type: dict[str, int]
    last_error: str | None


class Statistics(msgspec.Struct, kw_only=True):
    """Totals across providers plus one entry per provider (keyed ``tenant/name``)."""

    total_requests: int
    total_errors: int
    total_attempts: int
    avg_latency_ms: float
    error_rate: float
    providers: dict[str, ProviderStatistics]


class StatsRecorder:
    """Accumulates attempt outcomes per (tenant, provider) and caller-level request counts."""

    def __init__(self) -> None:
        self._by_provider: dict[tuple[str, str], _Counters] = {}
        self._requests: Counter[str] = Counter()
        self._failed: Counter[str] = Counter()

    def _get(self, tenant: str, provider: str) -> _Counters:
        key = (tenant, provider)
        counters = self._by_provider.get(key)
        if counters is None:
            counters = self._by_provider[key] = _Counters()
        return counters

    def request(self, tenant: str, ok: bool) -> None:
        """Count one caller request (however many attempts it took) and whether it succeeded."""
        self._requests[tenant] += 1
        if not ok:
            self._failed[tenant] += 1

    def success(self, tenant: str, provider: str, latency_ms: float, usage: Usage | None) -> None:
        """Record a successful attempt."""
        c = self._get(tenant, provider)
        c.attempts += 1
        c.successes += 1
        c.latency_ms_total += latency_ms
        if usage is not None:
            c.prompt_tokens += usage.prompt_tokens
            c.completion_tokens += usage.completion_tokens

    def success_tokens(self, tenant: str, provider: str, usage: Usage | None) -> None:
        """Add the tokens of a stream counted as a success when it started."""
        if usage is not None:
            c = self._get(tenant, provider)
            c.prompt_tokens += usage.prompt_tokens
            c.completion_tokens += usage.completion_tokens

    def failure(self, tenant: str, provider: str, error: Exception) -> None:
        """Record a failed attempt."""
        c = self._get(tenant, provider)
        c.attempts += 1
        c.errors += 1
        c.errors_by_type[type(error).__name__] += 1
        c.last_error = str(error)

    def forget(self, tenant: str, provider: str) -> None:
        """Drop a removed provider's figures."""
        self._by_provider.pop((tenant, provider), None)

    def snapshot(self, tenant: str | None = None) -> Statistics:
        """Return the figures (of one tenant, or of all)."""
        providers: dict[str, ProviderStatistics] = {}
        attempts = successes = 0
        latency = 0.0
        for (t, name), c in sorted(self._by_provider.items()):
            if tenant is not None and t != tenant:
                continue
            attempts += c.attempts
            successes += c.successes
            latency += c.latency_ms_total
            providers[f"{t}/{name}"] = ProviderStatistics(
                tenant=t,
                provider=name,
                requests=c.attempts,
                successes=c.successes,
                errors=c.errors,
                error_rate=c.errors / c.attempts if c.attempts else 0.0,
                avg_latency_ms=c.latency_ms_total / c.successes if c.successes else 0.0,
                prompt_tokens=c.prompt_tokens,
                completion_tokens=c.completion_tokens,
                errors_by_type=dict(c.errors_by_type),
                last_error=c.last_error,
            )
        requests = sum(v for k, v in self._requests.items() if tenant is None or k == tenant)
        failed = sum(v for k, v in self._failed.items() if tenant is None or k == tenant)
        return Statistics(
            total_requests=requests,
            total_errors=failed,
            total_attempts=attempts,
            avg_latency_ms=latency / successes if successes else 0.0,
            error_rate=failed / requests if requests else 0.0,
            providers=providers,
        )
