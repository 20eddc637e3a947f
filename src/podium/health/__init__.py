"""Provider health: rolling statistics, circuit breakers, active probes, sharing between replicas.

- ``HealthRegistry``: per provider (and per model) sliding windows and circuits; the router asks it
  before each attempt and reports each outcome (in memory, no I/O).
- ``HealthMonitor``: probes providers on a jittered schedule and runs ``HealthSync``, which shares
  health with other replicas through the state store.
- ``HealthSettings``: the ``health`` settings section.
"""

from podium.health.breaker import CircuitBreaker, CircuitState
from podium.health.config import BreakerSettings, HealthSettings
from podium.health.monitor import HealthMonitor
from podium.health.registry import Blocked, HealthRegistry, Permit
from podium.health.report import HealthStatus, HealthSummary, ModelHealth, ProbeResult, ProviderHealth
from podium.health.sync import HealthSync, SharedStore

__all__ = [
    "Blocked",
    "BreakerSettings",
    "CircuitBreaker",
    "CircuitState",
    "HealthMonitor",
    "HealthRegistry",
    "HealthSettings",
    "HealthStatus",
    "HealthSummary",
    "HealthSync",
    "ModelHealth",
    "Permit",
    "ProbeResult",
    "ProviderHealth",
    "SharedStore",
]
