"""Budget periods follow the calendar in the budget's time zone; per-key budgets; status reports."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from podium.costs import Budget, period_of
from podium.errors import BudgetExceeded, NotFound, RequestError
from podium.limits import RequestEstimate
from podium.limits.governance import Governance
from podium.state import StateStore
from podium.types import Usage


def test_periods_are_calendar_aligned_in_the_time_zone() -> None:
    now = datetime(2025, 1, 31, 23, 30, tzinfo=UTC)
    assert period_of("daily", now, "UTC").id == "2025-01-31"
    paris = period_of("daily", now, "Europe/Paris")  # already 00:30 on 1 February there
    assert paris.id == "2025-02-01"
    assert paris.start == datetime(2025, 1, 31, 23, 0, tzinfo=UTC)
    assert period_of("monthly", now, "Europe/Paris").id == "2025-02"
    december = period_of("monthly", datetime(2025, 12, 15, tzinfo=UTC), "UTC")
    assert (december.start.month, december.end.year, december.end.month) == (12, 2026, 1)


def test_invalid_budgets_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="daily, monthly"):
        Budget()
    with pytest.raises(ValueError, match="time zone"):
        Budget(daily=1, timezone="Mars/Olympus")
    gov = Governance()
    with pytest.raises(RequestError, match="email"):
        gov.set_budget("t", daily=1, alert_emails=["not-an-address"])
    with pytest.raises(NotFound):
        gov.budgets.remove("nobody")


async def test_a_key_budget_limits_only_that_key(store: StateStore) -> None:
    gov = Governance(store)
    gov.set_budget("acme", key_id="key-1", daily=1.0, enforce_hard_limit=True)
    gov.set_budget("acme", monthly=100.0, enforce_hard_limit=True)
    est = RequestEstimate(10, 10, max_cost=0.6)
    ticket = await gov.guard.admit("acme", "key-1", None, est)
    with pytest.raises(BudgetExceeded) as refused:
        await gov.guard.admit("acme", "key-1", None, est)
    assert refused.value.scope == "key:key-1:daily"
    await gov.guard.admit("acme", "key-2", None, est)  # other keys only see the tenant's budget
    await gov.guard.settle(ticket, Usage(10, 10, 20), 0.25)
    key_status = await gov.get_budget_status("acme", "key-1")
    assert [(p.period, p.spent, p.reserved) for p in key_status.periods] == [("daily", 0.25, 0.0)]
    tenant_status = await gov.get_budget_status("acme")
    (monthly,) = tenant_status.periods
    assert (monthly.spent, monthly.reserved) == (0.25, 0.6)
    assert monthly.remaining == pytest.approx(100 - 0.85)
    assert monthly.percent_used == pytest.approx(0.25)


async def test_status_hides_webhook_credentials() -> None:
    gov = Governance()
    gov.set_budget("acme", daily=5, alert_webhook="https://hooks.example/cost/T0K3N?secret=abc")
    status = await gov.get_budget_status("acme")
    assert status.alert_webhook == "https://hooks.example/.."
    assert status.periods[0].limit == 5


async def test_a_changed_budget_and_a_new_day_apply_to_the_next_request(store: StateStore) -> None:
    now = [datetime(2025, 3, 10, 23, 59, 59, tzinfo=UTC)]
    gov = Governance(store)
    gov.budgets._clock = lambda: now[0]
    est = RequestEstimate(10, 10, max_cost=0.6)
    gov.set_budget("acme", daily=1.0, enforce_hard_limit=True)
    await gov.guard.admit("acme", None, None, est)
    with pytest.raises(BudgetExceeded):
        await gov.guard.admit("acme", None, None, est)
    gov.set_budget("acme", daily=2.0, enforce_hard_limit=True)  # raised: the same request now fits
    ticket = await gov.guard.admit("acme", None, None, est)
    assert [ref.limit for ref, _ in ticket.budgets] == [2_000_000_000]
    now[0] = datetime(2025, 3, 11, 0, 0, 1, tzinfo=UTC)  # a new day: a new period with nothing reserved
    ticket = await gov.guard.admit("acme", None, None, RequestEstimate(10, 10, max_cost=1.9))
    assert [ref.period.id for ref, _ in ticket.budgets] == ["2025-03-11"]
    gov.budgets.remove("acme")
    assert (await gov.guard.admit("acme", None, None, est)).budgets == []
