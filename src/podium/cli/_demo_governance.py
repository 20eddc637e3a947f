"""Demo scenes: a tenant over its rate limit, a hard budget with signed webhook alerts, the costs."""

from __future__ import annotations

import asyncio

from podium.cli._demo_env import GOVERNED_TENANT, MAIN_TENANT, DemoWorld
from podium.cli._demo_render import Report, usd
from podium.cli._demo_webhook import alert_row
from podium.errors import BudgetExceeded
from podium.limits.limiter import LimitExceeded

_RATE = 2.0  # requests per second: a burst of two, then one every half second
_BUDGET_USD = 0.002  # about a dozen short requests at gpt-4o's list price
_MAX_TOKENS = 20
_MAX_TRIES = 50  # stops the loops should a limit never trip
# Short requests, each a small fraction of the budget, so spend crosses 50% and 80% before the hard
# limit refuses a request whose worst-case cost (max_tokens of output) no longer fits.
_PROMPT = "Write a short product tagline for our new espresso machine"


async def show_rate_limit(world: DemoWorld, report: Report) -> None:
    """Send until the tenant's limit refuses, honour Retry-After, and get through again."""
    orch = world.orch
    report.section(
        "rate limit",
        f"orch.set_rate_limit({MAIN_TENANT!r}, {{'requests_per_second': {_RATE:g}}}): a token bucket "
        "in the state store, checked before any provider is called.",
    )
    orch.set_rate_limit(MAIN_TENANT, {"requests_per_second": _RATE})
    admitted = 0
    refusal: LimitExceeded | None = None
    for _ in range(_MAX_TRIES):
        try:
            await orch.chat("ping", tenant=MAIN_TENANT)
            admitted += 1
        except LimitExceeded as exc:
            refusal = exc
            break
    if refusal is None:
        report.line(f"no refusal after {admitted} requests: the limit did not apply")
        return
    report.fact("admitted", f"{admitted} requests in a burst")
    report.fact("then refused", f"{type(refusal).__name__} (HTTP {refusal.status}): {refusal.message}")
    report.table(("response header", "value"), sorted(refusal.headers().items()))
    await asyncio.sleep(refusal.retry_after)
    r = await orch.chat("ping after waiting", tenant=MAIN_TENANT)
    report.fact(
        "after waiting retry_after", f"{refusal.retry_after:.2f} s, admitted again, answered by {r.provider}"
    )
    status = await orch.get_rate_limit_status(MAIN_TENANT)
    for level in status.levels:
        report.fact(
            f"orch.get_rate_limit_status: {level.name}",
            f"{level.remaining:.2f} of {level.limit:g} left, full again in {level.reset:.2f} s",
        )


async def show_budget(world: DemoWorld, report: Report) -> None:
    """Spend a hard daily budget until it refuses; the alerts reach the local webhook receiver."""
    orch, receiver = world.orch, world.receiver
    budget = orch.set_budget(
        GOVERNED_TENANT, daily=_BUDGET_USD, enforce_hard_limit=True, alert_webhook=receiver.url
    )
    report.section(
        "hard budget and alerts",
        f"Tenant {GOVERNED_TENANT!r} gets a hard daily budget of {usd(budget.daily)} with alerts at "
        f"{', '.join(f'{t:.0%}' for t in budget.thresholds)}, POSTed to a webhook receiver this demo runs "
        f"at {receiver.url}, signed with HMAC-SHA256 (governance.webhook_secret).",
    )
    rows: list[tuple[object, ...]] = []
    refused: BudgetExceeded | None = None
    for i in range(_MAX_TRIES):
        try:
            r = await orch.chat(_PROMPT, tenant=GOVERNED_TENANT, max_tokens=_MAX_TOKENS)
        except BudgetExceeded as exc:
            refused = exc
            rows.append((i + 1, "refused", "-", "-", f"{type(exc).__name__} (HTTP {exc.status})"))
            break
        status = await orch.get_budget_status(GOVERNED_TENANT)
        spent = status.periods[0].spent
        rows.append(
            (
                i + 1,
                f"{r.provider} / {r.model}",
                usd(r.cost),
                usd(spent),
                f"{status.periods[0].percent_used:.1f}% used",
            )
        )
    report.table(("#", "answered by", "cost", "spent today", "budget"), rows)
    if refused is not None:
        report.fact("refusal", f"{refused.message} (scope {refused.scope})")
    await orch.governance.alerts.drain(10)
    await receiver.wait_for(1, 5)
    report.line(f"the webhook receiver got {len(receiver.received)} alert(s):")
    if receiver.received:
        cells = [alert_row(a) for a in receiver.received]
        report.table(tuple(cells[0]), [tuple(c.values()) for c in cells])
        report.line("the last one, as received:")
        report.line(receiver.received[-1].pretty_json())


async def show_costs(world: DemoWorld, report: Report) -> None:
    """What each tenant spent, by provider and model, from the cost ledger."""
    orch = world.orch
    report.section(
        "cost summary", "orch.get_cost_summary(tenant), from the ledger every answer is charged to."
    )
    rows: list[tuple[object, ...]] = []
    for tenant in orch.tenants():
        s = await orch.get_cost_summary(tenant)
        models = ", ".join(f"{m} {usd(c)}" for m, c in sorted(s.by_model.items()))
        rows.append((tenant, s.requests, s.total_tokens, usd(s.total_cost), usd(s.today), models))
    report.table(("tenant", "requests", "tokens", "total", "today", "by provider/model"), rows)
