"""Costs: prices (genai-prices + overrides), the ledger, budgets and budget alerts."""

from __future__ import annotations

from podium._lazy import lazy_exports

_EXPORTS = {
    "Analytics": "podium.costs.ledger",
    "Budget": "podium.costs.budgets",
    "BudgetRef": "podium.costs.budgets",
    "BudgetStatus": "podium.costs.budgets",
    "Budgets": "podium.costs.budgets",
    "Cost": "podium.costs.pricing",
    "CostSummary": "podium.costs.ledger",
    "GovernanceSettings": "podium.costs.config",
    "Ledger": "podium.costs.ledger",
    "ModelUsage": "podium.costs.ledger",
    "Period": "podium.costs.budgets",
    "PeriodStatus": "podium.costs.budgets",
    "Point": "podium.costs.ledger",
    "PriceOverride": "podium.costs.pricing",
    "Pricing": "podium.costs.pricing",
    "parse_window": "podium.costs.ledger",
    "period_of": "podium.costs.budgets",
}

__all__ = sorted(_EXPORTS)

# Loaded on first use: the state store, limits and costs import each other's modules, and an eager
# package import would make that a cycle.
__getattr__ = lazy_exports(__name__, _EXPORTS)
