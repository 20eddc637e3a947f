"""The Orchestrator's governance methods: rate limits, budgets, costs (the seed's API, snake_case).

Limits and budgets set here are kept in the configuration directory (``governance.json``) when the
orchestrator was started from settings, so they survive restarts and reach replicas sharing it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from podium.config.governance_store import GovernanceStore
from podium.costs.budgets import Budget, BudgetStatus
from podium.costs.ledger import Analytics, CostSummary
from podium.limits.config import RateLimitConfig
from podium.limits.governance import Governance
from podium.limits.limiter import LimitStatus


class GovernanceApi:
    """Mixed into ``Orchestrator``; every method forwards to its ``governance``."""

    governance: Governance
    _governance_store: GovernanceStore | None

    def _save_governance(self) -> None:
        if self._governance_store is None:
            return
        self._governance_store.save(*governance_config(self.governance))

    def _load_governance(self, *, keep: tuple[list[dict[str, Any]], list[dict[str, Any]]]) -> None:
        """Make the configured limits and budgets ``keep`` plus the stored ones (stored win)."""
        assert self._governance_store is not None
        stored = self._governance_store.load()
        apply_governance(self.governance, keep[0] + stored["limits"], keep[1] + stored["budgets"])

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
        config = self.governance.set_rate_limit(target, limits, scope)
        self._save_governance()
        return config

    def remove_rate_limit(self, target: str, scope: str = "tenant") -> None:
        """Stop limiting a target.

        Raises:
            NotFound: it has no limits.
        """
        self.governance.limiter.remove(scope, target)
        self._save_governance()

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
        budget = self.governance.set_budget(tenant, key_id=key_id, **fields)
        self._save_governance()
        return budget

    def remove_budget(self, tenant: str, key_id: str | None = None) -> None:
        """Remove a budget (spend already recorded stays until its period ends).

        Raises:
            NotFound: there is no such budget.
        """
        self.governance.budgets.remove(tenant, key_id)
        self._save_governance()

    async def get_budget_status(self, tenant: str, key_id: str | None = None) -> BudgetStatus:
        """A budget's limits, spend and in-flight reservations for the current day and month."""
        return await self.governance.get_budget_status(tenant, key_id)

    async def get_cost_summary(self, tenant: str) -> CostSummary:
        """What a tenant spent: total, today, this month, monthly projection, by provider and model."""
        return await self.governance.get_cost_summary(tenant)

    async def get_analytics(self, window: str = "7d", tenant: str = "default") -> Analytics:
        """Spend, tokens, top models and a per-day (or per-hour for ``24h``) series over ``window``."""
        return await self.governance.get_analytics(window, tenant)


def governance_config(gov: Governance) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The configured limits and budgets as plain data (secrets in clear: seal before storing)."""
    limits = [
        {"scope": scope, "target": target, "limits": config.model_dump(exclude_none=True)}
        for scope, target, config in gov.limiter.configured()
    ]
    budgets = [
        {"tenant": tenant, "key_id": key_id, "budget": budget.model_dump(mode="json")}
        for tenant, key_id, budget in gov.budgets.configured()
    ]
    return limits, budgets


def apply_governance(gov: Governance, limits: list[dict[str, Any]], budgets: list[dict[str, Any]]) -> None:
    """Replace the configured limits and budgets by these (later entries win over earlier ones)."""
    wanted_limits = {(e["scope"], e["target"]): e["limits"] for e in limits}
    wanted_budgets = {(e["tenant"], e.get("key_id")): e["budget"] for e in budgets}
    for scope, target, _ in gov.limiter.configured():
        if (scope, target) not in wanted_limits:
            gov.limiter.remove(scope, target)
    for tenant, key_id, _ in gov.budgets.configured():
        if (tenant, key_id) not in wanted_budgets:
            gov.budgets.remove(tenant, key_id)
    for (scope, target), config in wanted_limits.items():
        gov.set_rate_limit(target, config, scope)
    for (tenant, key_id), budget in wanted_budgets.items():
        gov.set_budget(tenant, key_id=key_id, **budget)
