"""The Orchestrator's governance methods: rate limits, budgets, costs (the seed's API, snake_case)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from podium.costs.budgets import Budget, BudgetStatus
from podium.costs.ledger import Analytics, CostSummary
from podium.limits.config import RateLimitConfig
from podium.limits.governance import Governance
from podium.limits.limiter import LimitStatus


class GovernanceApi:
    """Mixed into ``Orchestrator``; every method forwards to its ``governance``."""

    governance: Governance

    def set_rate_limit(
        self, target: str, limits: RateLimitConfig | Mapping[str, Any], scope: str = "tenant"
    ) -> RateLimitConfig:
        """Limit a tenant, a provider or an API key.

        Args:
            target: The tenant name, provider name or API key id.
            limits: ``requests_per_second`` / ``_minute`` / ``_hour``, ``tokens_per_second`` /
                ``_minute``, ``concurrent_requests``, ``max_wait`` (seconds to wait for capacity
                instead of refusing); the seed's camelCase names work too.
            scope: ``"tenant"``, ``"provider"`` or ``"key"``.

        Raises:
            RequestError: an unknown scope or limit name, or an invalid value.
        """
        return self.governance.set_rate_limit(target, limits, scope)

    async def get_rate_limit_status(self, target: str, scope: str = "tenant") -> LimitStatus:
        """A target's configured limits and how much of each is left right now."""
        return await self.governance.get_rate_limit_status(target, scope)

    async def reset_rate_limit(self, target: str, scope: str = "tenant") -> None:
        """Refill a target's buckets and free its concurrency slots."""
        await self.governance.reset_rate_limit(target, scope)

    def set_budget(self, tenant: str, *, key_id: str | None = None, **fields: Any) -> Budget:
        """Set a tenant's (or one API key's) daily and/or monthly budget.

        Args:
            tenant: The tenant.
            key_id: Budget one API key of the tenant instead of the whole tenant.
            **fields: ``daily``, ``monthly`` (USD), ``alert_emails``, ``alert_webhook``,
                ``enforce_hard_limit`` (refuse with ``BudgetExceeded`` rather than only alert),
                ``thresholds`` (fractions, default 0.5/0.8/1.0), ``timezone``; camelCase works too.

        Raises:
            RequestError: invalid fields.
        """
        return self.governance.set_budget(tenant, key_id=key_id, **fields)

    async def get_budget_status(self, tenant: str, key_id: str | None = None) -> BudgetStatus:
        """A budget's limits, spend and in-flight reservations for the current day and month."""
        return await self.governance.get_budget_status(tenant, key_id)

    async def get_cost_summary(self, tenant: str) -> CostSummary:
        """What a tenant spent: total, today, this month, monthly projection, by provider and model."""
        return await self.governance.get_cost_summary(tenant)

    async def get_analytics(self, window: str = "7d", tenant: str = "default") -> Analytics:
        """Spend, tokens, top models and a per-day (or per-hour for ``24h``) series over ``window``."""
        return await self.governance.get_analytics(window, tenant)
