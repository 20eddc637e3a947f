"""Rate limits (token buckets, concurrency caps) and the guard that also reserves budgets.

See :mod:`podium.limits.guard` for the request-path contract and :mod:`podium.limits.governance` for the
facade (not imported here: it builds state stores, whose in-process implementation uses this package's
bucket arithmetic).
"""

from __future__ import annotations

from podium._lazy import lazy_exports

_EXPORTS = {
    "API_KEY_ID": "podium.limits.guarded",
    "BucketRule": "podium.limits.config",
    "Guard": "podium.limits.guard",
    "GuardOptions": "podium.limits.guard",
    "Guarded": "podium.limits.guarded",
    "LimitExceeded": "podium.limits.limiter",
    "LimitLevel": "podium.limits.limiter",
    "LimitScope": "podium.limits.config",
    "LimitStatus": "podium.limits.limiter",
    "Limiter": "podium.limits.limiter",
    "Permit": "podium.limits.guard",
    "ProviderOverLimit": "podium.limits.guard",
    "RateLimitConfig": "podium.limits.config",
    "RequestEstimate": "podium.limits.estimate",
    "SCOPES": "podium.limits.config",
    "SETTLEMENT": "podium.limits.guarded",
    "Settlement": "podium.limits.guard",
    "TICKET": "podium.limits.guarded",
    "Ticket": "podium.limits.guard",
    "count_tokens": "podium.limits.estimate",
    "estimate": "podium.limits.estimate",
    "rate_limit_headers": "podium.limits.limiter",
}

__all__ = sorted(_EXPORTS)

# Loaded on first use: the state store, limits and costs import each other's modules, and an eager
# package import would make that a cycle.
__getattr__ = lazy_exports(__name__, _EXPORTS)
