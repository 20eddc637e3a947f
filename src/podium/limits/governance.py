"""Governance: one object that owns the state store, limits, budgets, prices, ledger, alerts and guard.

The Orchestrator holds one and forwards the seed's API to it::

    gov = Governance.from_settings(settings, writer=writer, bus=bus, request_log=RequestLog(db))
    gov.set_rate_limit("tenant-a", {"requestsPerMinute": 600, "tokensPerSecond": 2000}, "tenant")
    gov.set_budget("tenant-a", daily=50.0, monthly=1000.0, enforce_hard_limit=True)
    ticket = await gov.guard.admit("tenant-a", None, None, estimate(request))
    ...
    await gov.get_cost_summary("tenant-a")
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from podium.costs.alerts.dispatcher import Alerts
from podium.costs.alerts.email import EmailChannel
from podium.costs.alerts.webhook import WebhookChannel
from podium.costs.budgets import Budget, Budgets, BudgetStatus
from podium.costs.config import GovernanceSettings
from podium.costs.ledger import Analytics, CostSummary, Ledger
from podium.costs.pricing import Pricing
from podium.events import EventBus
from podium.limits.config import RateLimitConfig
from podium.limits.guard import Guard, GuardOptions
from podium.limits.limiter import Limiter, LimitStatus
from podium.settings import Settings
from podium.state import MemoryStateStore, StateStore, open_state_store
from podium.storage.repositories import RequestLog
from podium.storage.writer import RecordWriter


class Governance:
    """Rate limits, budgets, costs and alerts over one state store.

    Args:
        store: The state store (default: in-process).
        settings: The ``governance`` settings.
        writer: Where request records and budget audit events go.
        bus: Where ``budget.alert`` events are published.
        request_log: The database request log (day analytics read it when given).
        default_webhook: Alert webhook for budgets without their own (``AI_COST_ALERT_WEBHOOK``).
    """

    def __init__(
        self,
        store: StateStore | None = None,
        *,
        settings: GovernanceSettings | None = None,
        writer: RecordWriter | None = None,
        bus: EventBus | None = None,
        request_log: RequestLog | None = None,
        default_webhook: str | None = None,
    ) -> None:
        self.settings = settings = settings or GovernanceSettings()
        self.store = store if store is not None else MemoryStateStore(settings.key_prefix)
        self.limiter = Limiter(self.store, slot_ttl=settings.slot_ttl)
        self.budgets = Budgets(self.store)
        self.pricing = Pricing(settings.local_provider_types)
        for provider, prices in settings.prices.items():
            self.pricing.set_provider(provider, prices=prices)
        self.ledger = Ledger(self.store, request_log)
        self.alerts = Alerts(
            webhook=WebhookChannel(settings.webhook_secret, attempts=settings.webhook_attempts),
            email=EmailChannel(settings.smtp) if settings.smtp is not None else None,
            default_webhook=default_webhook,
            writer=writer,
            bus=bus,
        )
        self.guard = Guard(
            self.limiter,
            self.budgets,
            self.pricing,
            self.ledger,
            self.alerts,
            GuardOptions(settings.default_max_tokens),
        )

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        governance: GovernanceSettings | None = None,
        *,
        writer: RecordWriter | None = None,
        bus: EventBus | None = None,
        request_log: RequestLog | None = None,
    ) -> Governance:
        """Build from podium's settings: Redis when ``redis_url`` is set, plus its ``limits`` and ``budgets``.

        Raises:
            RequestError: a limits or budgets entry is invalid.
        """
        governance = governance or GovernanceSettings()
        store = open_state_store(settings.redis_url, governance.key_prefix)
        gov = cls(
            store,
            settings=governance,
            writer=writer,
            bus=bus,
            request_log=request_log,
            default_webhook=settings.cost_alert_webhook,
        )
        for entry in settings.limits:
            gov.set_rate_limit(entry.target, entry.limits.model_dump(exclude_none=True), entry.scope)
        for budget in settings.budgets:
            gov.set_budget(budget.tenant, **budget.model_dump(exclude={"tenant"}))
        return gov

    def attach_storage(self, writer: RecordWriter, request_log: RequestLog | None) -> None:
        """Use the database once it is open.

        Budget audit events go to ``writer``; day-by-day analytics read ``request_log`` (None: the
        requests are not recorded, and they read the ledger's own day totals).
        """
        self.alerts.writer = writer
        self.ledger.request_log = request_log

    def set_rate_limit(
        self, target: str, limits: RateLimitConfig | Mapping[str, Any], scope: str = "tenant"
    ) -> RateLimitConfig:
        """Set the limits of a tenant, provider or API key (the seed's camelCase names work)."""
        return self.limiter.set(scope, target, limits)

    async def get_rate_limit_status(self, target: str, scope: str = "tenant") -> LimitStatus:
        """Configured limits and their live levels."""
        return await self.limiter.status(scope, target)

    async def reset_rate_limit(self, target: str, scope: str = "tenant") -> None:
        """Refill a target's buckets and free its concurrency slots."""
        await self.limiter.reset(scope, target)

    def set_budget(self, tenant: str, *, key_id: str | None = None, **fields: Any) -> Budget:
        """Set a tenant's (or API key's) budget: ``daily``, ``monthly``, ``alert_emails``, ..."""
        return self.budgets.set(tenant, key_id=key_id, **fields)

    async def get_budget_status(self, tenant: str, key_id: str | None = None) -> BudgetStatus:
        """Limits, spend and reservations of the current periods."""
        return await self.budgets.status(tenant, key_id)

    async def get_cost_summary(self, tenant: str) -> CostSummary:
        """Total, today, month, projection, by provider and model."""
        return await self.ledger.summary(tenant)

    async def get_analytics(self, window: str = "7d", tenant: str = "default") -> Analytics:
        """Spend, tokens, top models and a per-day or per-hour series over ``window``."""
        return await self.ledger.analytics(window, tenant)

    async def aclose(self) -> None:
        """Deliver alerts in flight and close the store."""
        await self.alerts.aclose()
        await self.store.aclose()
