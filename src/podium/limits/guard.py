"""The guard: rate limits and budget reservations before a call, exact settlement after it.

One request, in at most three state-store round trips (one atomic script each)::

    ticket = await guard.admit(tenant, key_id, provider, estimate)   # tenant/key(/provider) limits + budget
    permit = await guard.admit_provider(ticket, "gpt", "gpt-4o")     # per attempt; no round trip when the
                                                                     # ticket already covers it
    ...call the provider...
    settlement = await guard.settle(ticket, response.usage)          # refunds, spend, ledger, alert flags
    # on failure: await guard.release(permit) for a failed attempt, await guard.cancel(ticket) at the end

The budget reservation is the request's maximum possible cost (prompt + ``max_tokens`` at the model's
prices), so concurrent requests, on any number of replicas, cannot spend past a hard limit except by
what a response costs beyond its own reservation.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec

from podium._ids import new_id
from podium.costs.alerts.base import BudgetAlert
from podium.costs.alerts.dispatcher import Alerts
from podium.costs.budgets import BudgetRef, Budgets
from podium.costs.ledger import Ledger
from podium.costs.pricing import Cost, Pricing
from podium.errors import BudgetExceeded, StateStoreUnavailable
from podium.limits.config import BucketRule, LimitScope
from podium.limits.estimate import RequestEstimate
from podium.limits.limiter import Limiter, LimitExceeded, LimitPlan, rate_limit_headers
from podium.state.base import BudgetReserve, Check, Committed, Op, Reservation, to_nanos, to_usd
from podium.types import Usage

log = logging.getLogger(__name__)

_CHARGE = "a charge of $%.6f to tenant %r"  # what a lost settlement or charge was, for the log


def _log_lost(exc: BaseException, what: str, *what_args: object) -> None:
    """Log a commit the state store did not take after the answer went out (formatted only here)."""
    log.error(f"{what} was not recorded in the state store: %s", *what_args, exc)


class ProviderOverLimit(LimitExceeded):
    """A provider is over podium's own limit for it: the router moves on to the next provider.

    A podium limit, not a provider fault: it never counts against the provider's health.

    Attributes:
        provider: The provider over its limit.
    """

    code = "provider_over_limit"

    def __init__(self, *, provider: str, **limit: Any) -> None:
        super().__init__(**limit)
        self.provider = provider


@dataclass(frozen=True, slots=True)
class GuardOptions:
    """Tuning of the guard.

    Attributes:
        default_max_tokens: Output tokens reserved for requests that set no ``max_tokens``.
    """

    default_max_tokens: int = 4096


class Settlement(msgspec.Struct, frozen=True):
    """What a request cost.

    Attributes:
        cost: US dollars.
        cost_nanos: Exact nano-dollars, as added to the ledger and budgets.
        source: Where the price came from (``genai-prices``, ``override``, ``local``, ``unknown``).
        alerts: Alerts this settlement raised (already being delivered). Empty when the store confirms
            the settlement after the answer (Redis, see ``StateStore.commit_soon``): its alerts are
            delivered all the same, once the store's reply comes.
    """

    cost: float
    cost_nanos: int
    source: str
    alerts: tuple[BudgetAlert, ...] = ()


class Permit(msgspec.Struct, eq=False):
    """One upstream attempt admitted by :meth:`Guard.admit_provider`."""

    ticket: Ticket
    provider: str
    model: str | None
    plan: LimitPlan | None


class Ticket(msgspec.Struct, eq=False):
    """An admitted request: what it holds until it is settled or cancelled.

    Attributes:
        id: Unique id (also the concurrency-slot member).
        headers: ``x-ratelimit-*`` headers for the response, from the tightest limits.
        settlement: The settlement, once settled.
    """

    tenant: str
    key_id: str | None
    provider: str | None
    model: str | None
    estimate: RequestEstimate
    tokens: int
    plans: list[LimitPlan]
    budgets: list[tuple[BudgetRef, int]]
    id: str = msgspec.field(default_factory=new_id)
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    permits: list[Permit] = msgspec.field(default_factory=list)
    state: Literal["open", "settled", "cancelled"] = "open"
    settlement: Settlement | None = None
    charged_tokens: int = 0
    started: float = msgspec.field(default_factory=time.monotonic)
    started_at: datetime = msgspec.field(default_factory=functools.partial(datetime.now, UTC))

    @property
    def reserved(self) -> int:
        """The budget reservation per budget period, nano-dollars (the same for each)."""
        return max((amount for _, amount in self.budgets), default=0)


class _Source(msgspec.Struct, frozen=True):
    plan: LimitPlan | None
    limit_name: str
    ref: BudgetRef | None
    amount: int
    rule: BucketRule | None = None  # a bucket take's rule (its x-ratelimit-* headers)


class Guard:
    """Admits requests under rate limits and budgets and settles their real cost.

    Args:
        limiter: Rate-limit configurations (its store is the guard's store).
        budgets: Budget configurations.
        pricing: Prices.
        ledger: The cost ledger.
        alerts: Alert delivery.
        options: Tuning.
    """

    def __init__(
        self,
        limiter: Limiter,
        budgets: Budgets,
        pricing: Pricing,
        ledger: Ledger,
        alerts: Alerts,
        options: GuardOptions | None = None,
    ) -> None:
        self.store = limiter.store
        self.limiter = limiter
        self.budgets = budgets
        self.pricing = pricing
        self.ledger = ledger
        self.alerts = alerts
        self.options = options or GuardOptions()

    def provider_target(self, tenant: str, provider: str) -> str:
        """The limit target of a tenant's provider: ``tenant/provider`` when set so, else the bare name.

        Provider names are unique only within a tenant: ``tenant/provider`` limits one tenant's
        provider; a bare name limits every tenant's provider of that name (an operator's setting).
        """
        qualified = f"{tenant}/{provider}"
        return qualified if self.limiter.get("provider", qualified) is not None else provider

    def _max_cost(
        self, tenant: str, provider: str | None, model: str | None, estimate: RequestEstimate
    ) -> int:
        if estimate.max_cost is not None:
            return to_nanos(estimate.max_cost)
        if model is None:
            return 0
        out = estimate.max_tokens if estimate.max_tokens is not None else self.options.default_max_tokens
        return self.pricing.max_cost(
            estimate.prompt_tokens, out, model=model, provider=provider, tenant=tenant
        ).nanos

    async def admit(
        self, tenant: str, key_id: str | None, provider: str | None, estimate: RequestEstimate
    ) -> Ticket:
        """Take the tenant's, the key's (and the provider's, when named) limits and reserve the budget.

        One atomic state-store step. Limits with ``max_wait`` wait for capacity up to that long.

        Raises:
            LimitExceeded: a rate limit refused the request (HTTP 429, ``retry_after``, ``headers()``).
            BudgetExceeded: a hard budget cannot cover the request's maximum cost (HTTP 402, ``scope``).
        """
        out = estimate.max_tokens if estimate.max_tokens is not None else self.options.default_max_tokens
        now = self.budgets.now()
        ticket = Ticket(
            tenant,
            key_id,
            provider,
            estimate.model,
            estimate,
            estimate.prompt_tokens + out,
            [],
            [],
            started_at=now,
        )
        scoped: tuple[tuple[LimitScope, str | None], ...] = (
            ("tenant", tenant),
            ("key", key_id),
            ("provider", self.provider_target(tenant, provider) if provider else None),
        )
        for scope, target in scoped:
            if target is not None:
                plan = self.limiter.plan(scope, target, ticket.tokens, ticket.id)
                if plan is not None:
                    ticket.plans.append(plan)
        refs = self.budgets.refs(tenant, key_id, now)
        # Pricing is the costliest step of admission: skip it when no budget needs the reservation.
        amount = self._max_cost(tenant, provider, estimate.model, estimate) if refs else 0
        ticket.budgets = [(ref, amount) for ref in refs]
        checks, sources = _checks(
            ticket.plans, [(ref, ref.reserve(amount, now)) for ref, _ in ticket.budgets]
        )
        if not checks:
            return ticket  # nothing limits or budgets it: no store step, no rate-limit headers
        waited = 0.0
        while True:
            result = await self.store.reserve(checks)
            if result.ok:
                ticket.headers = _headers(sources, result)
                return ticket
            source = sources[result.failed or 0]
            if source.ref is not None:
                await self._refused(source, result)
            assert source.plan is not None
            max_wait = source.plan.config.max_wait
            if result.retry_after <= 0 or waited + result.retry_after > max_wait:
                raise _limit_error(source, result)
            await asyncio.sleep(result.retry_after)
            waited += result.retry_after

    async def admit_provider(self, ticket: Ticket, provider: str, model: str | None) -> Permit:
        """Admit one attempt on ``provider``: its own limits, and a budget top-up if it may cost more.

        No round trip when the ticket already holds this provider's limits and enough budget.

        Raises:
            ProviderOverLimit: the provider is over its podium limit (the router fails over).
            BudgetExceeded: a hard budget cannot cover this provider's maximum cost.
        """
        plan = None
        if provider != ticket.provider:
            plan = self.limiter.plan(
                "provider",
                self.provider_target(ticket.tenant, provider),
                ticket.tokens,
                f"{ticket.id}:{len(ticket.permits)}",
            )
        extra = 0
        reserves: list[tuple[BudgetRef, BudgetReserve]] = []
        if ticket.budgets:  # without a budget there is nothing to top up, and nothing to price
            need = self._max_cost(ticket.tenant, provider, model or ticket.model, ticket.estimate)
            extra = max(0, need - ticket.reserved)
            if extra:
                now = self.budgets.now()
                reserves = [(ref, ref.reserve(extra, now)) for ref, _ in ticket.budgets]
        checks, sources = _checks([plan] if plan else [], reserves)
        if checks:
            result = await self.store.reserve(checks)
            if not result.ok:
                source = sources[result.failed or 0]
                if source.ref is not None:
                    await self._refused(source, result)
                raise _limit_error(source, result, provider=provider)
            ticket.headers.update(_headers(sources, result))
        if extra:
            ticket.budgets = [(ref, amount + extra) for ref, amount in ticket.budgets]
        ticket.model = model or ticket.model
        permit = Permit(ticket, provider, model, plan)
        ticket.permits.append(permit)
        return permit

    async def release(self, permit: Permit) -> None:
        """A failed attempt: give its provider tokens back and free its slot (its request count stays)."""
        if permit in permit.ticket.permits:
            permit.ticket.permits.remove(permit)
            if permit.plan is not None:
                await self._commit_after(permit.plan.settle_ops(None), "the failed attempt's limits")

    async def charge(
        self, ticket: Ticket, usage: Usage, *, provider: str, model: str, cost: float | None = None
    ) -> Settlement:
        """Add one extra answer's cost to the ledger and budgets without closing the ticket.

        For requests answered by several providers (consensus): charge each side answer, then settle
        the ticket with the final one.
        """
        price = self._price(ticket, usage, provider, model, cost)
        now = self.budgets.now()
        ops: list[Op] = [ref.settle(0, price.nanos, now) for ref, _ in ticket.budgets]
        ops += self.ledger.ops(ticket.tenant, provider, model, usage, price.nanos, now)
        ticket.charged_tokens += _tokens(usage)
        committed = await self._commit_after(ops, _CHARGE, price.usd, ticket.tenant)
        alerts = self._settled_alerts(ticket, 0, committed)
        return Settlement(price.usd, price.nanos, price.source, alerts)

    async def settle(
        self,
        ticket: Ticket,
        usage: Usage,
        cost: float | None = None,
        *,
        provider: str | None = None,
        model: str | None = None,
    ) -> Settlement:
        """Charge the real cost, refund unused token reservations, free slots; one atomic step.

        Args:
            ticket: The admitted request.
            usage: Its real usage (for a cut-off stream: the tokens received).
            cost: The cost in US dollars when the caller knows it (default: priced from ``usage``).
            provider: The provider that answered (default: the ticket's last attempt).
            model: The model that answered (default: the ticket's).
        """
        if ticket.state != "open":
            assert ticket.settlement is not None or ticket.state == "cancelled"
            return ticket.settlement or Settlement(0.0, 0, "unknown")
        provider = provider or (ticket.permits[-1].provider if ticket.permits else ticket.provider) or ""
        model = model or ticket.model or ""
        price = self._price(ticket, usage, provider, model, cost)
        now = self.budgets.now()
        used = ticket.charged_tokens + _tokens(usage)
        ops: list[Op] = [op for plan in self._plans(ticket) for op in plan.settle_ops(used)]
        first = len(ops)
        ops += [ref.settle(amount, price.nanos, now) for ref, amount in ticket.budgets]
        ops += self.ledger.ops(ticket.tenant, provider, model, usage, price.nanos, now)
        ticket.state = "settled"
        _drop_permits(ticket)
        soon = self.store.commit_soon(ops)
        if soon is not None:
            # The answer does not wait for the store's reply (a round trip to Redis): later calls from
            # this process see the commit applied, and its alerts go out when the reply comes.
            soon.add_done_callback(functools.partial(self._settled_later, ticket, first, price))
            ticket.settlement = Settlement(price.usd, price.nanos, price.source)
            return ticket.settlement
        committed = await self._commit_after(ops, _CHARGE, price.usd, ticket.tenant)
        alerts = self._settled_alerts(ticket, first, committed)
        ticket.settlement = Settlement(price.usd, price.nanos, price.source, alerts)
        return ticket.settlement

    def _settled_alerts(self, ticket: Ticket, first: int, committed: Committed) -> tuple[BudgetAlert, ...]:
        """The alerts a settlement's commit raised; its budget ops start at index ``first``."""
        spent = [committed.spent.get(first + i, 0) for i in range(len(ticket.budgets))]
        return self._alerts(ticket, committed.flags, spent)

    def _settled_later(
        self, ticket: Ticket, first: int, price: Cost, soon: asyncio.Future[Committed]
    ) -> None:
        """The store's reply to a settlement sent by ``commit_soon``: raise its alerts, or log its loss."""
        if soon.cancelled():
            return
        exc = soon.exception()
        if exc is not None:
            # As in _commit_after, with any error: nobody awaits this commit to receive it.
            _log_lost(exc, _CHARGE, price.usd, ticket.tenant)
            return
        self._settled_alerts(ticket, first, soon.result())

    async def cancel(self, ticket: Ticket, error: BaseException | None = None) -> None:
        """The request failed: refund its tokens, free its slots, drop its budget reservation.

        Its request counts stay taken (the attempt happened). Cancelling a settled ticket does nothing.
        """
        if ticket.state != "open":
            return
        ticket.state = "cancelled"
        now = self.budgets.now()
        ops: list[Op] = [op for plan in self._plans(ticket) for op in plan.settle_ops(ticket.charged_tokens)]
        ops += [ref.settle(amount, 0, now) for ref, amount in ticket.budgets if amount]
        _drop_permits(ticket)
        await self._commit_after(ops, "the failed request's reservation")

    # ---- helpers ------------------------------------------------------------------------------------

    async def _commit_after(self, ops: Sequence[Op], what: str, *what_args: object) -> Committed:
        """Commit once the upstream has answered (or failed): losing the store then must not lose that.

        The answer reaches the caller and the request log still has the cost; the shared ledger and
        budgets miss it, so it is logged as an error. Reservations left behind expire with their TTL.
        ``what`` (with ``%`` arguments ``what_args``) names what was lost; it is formatted only then,
        never on the request path.
        """
        try:
            return await self.store.commit(ops)
        except StateStoreUnavailable as exc:
            _log_lost(exc, what, *what_args)
            return Committed()

    @staticmethod
    def _plans(ticket: Ticket) -> list[LimitPlan]:
        return [*ticket.plans, *(p.plan for p in ticket.permits if p.plan is not None)]

    def _price(self, ticket: Ticket, usage: Usage, provider: str, model: str, cost: float | None) -> Cost:
        if cost is not None:
            return Cost(to_nanos(cost), "override")
        return self.pricing.cost(usage, model=model, provider=provider or None, tenant=ticket.tenant)

    def _alerts(self, ticket: Ticket, flags: Sequence[str], spent: Sequence[int]) -> tuple[BudgetAlert, ...]:
        if not flags:
            return ()
        wanted = set(flags)
        out = []
        for (ref, _), level in zip(ticket.budgets, spent, strict=True):
            for threshold in ref.budget.thresholds:
                if ref.flag(threshold) in wanted:
                    out.append(self._alert(ref, "threshold", threshold, level))
        return tuple(out)

    def _alert(
        self, ref: BudgetRef, kind: Literal["threshold", "refused"], threshold: float, level: int
    ) -> BudgetAlert:
        alert = BudgetAlert(
            kind=kind,
            tenant=ref.tenant,
            key_id=ref.key_id,
            scope=ref.scope,
            period=ref.period.name,
            period_id=ref.period.id,
            threshold=threshold,
            limit=to_usd(ref.limit),
            spent=to_usd(level),
            percent_used=100.0 * level / ref.limit if ref.limit else 100.0,
            hard=ref.budget.enforce_hard_limit,
            at=time.time(),
        )
        self.alerts.dispatch(alert, ref.budget.alert_webhook, ref.budget.alert_emails)
        return alert

    async def _refused(self, source: _Source, result: Reservation) -> None:
        ref = source.ref
        assert ref is not None
        if await self.store.try_lock(ref.flag("refused"), ref.ttl(self.budgets.now())):
            self._alert(ref, "refused", 1.0, result.spent)
        raise BudgetExceeded(
            f"the {ref.period.name} budget of {ref.scope.rsplit(':', 1)[0]} (${to_usd(ref.limit):.2f}) "
            f"cannot cover this request: ${to_usd(result.spent):.4f} spent, "
            f"${to_usd(result.reserved):.4f} reserved by requests in flight, this request may cost up "
            f"to ${to_usd(source.amount):.4f}; lower "
            f"max_tokens, wait for the period to reset ({ref.period.end.isoformat()}), or raise the budget",
            scope=ref.scope,
        )


def _drop_permits(ticket: Ticket) -> None:
    """Forget a closed ticket's permits: their limits went back in the closing step.

    A permit refers to its ticket and the ticket lists its permits. Left in place, that cycle outlives
    the request, and every request's ticket, permit and limit plans waited for the cyclic garbage
    collector instead of being freed when the request ended. Under load that collector then ran
    often and walked every request in flight. A :meth:`Guard.release` after the close finds nothing
    to give back, as it should.
    """
    ticket.permits = []


def _tokens(usage: Usage) -> int:
    return usage.total_tokens or usage.prompt_tokens + usage.completion_tokens


def _checks(
    plans: Sequence[LimitPlan], reserves: Sequence[tuple[BudgetRef, BudgetReserve]]
) -> tuple[list[Check], list[_Source]]:
    checks: list[Check] = []
    sources: list[_Source] = []
    for plan in plans:
        for take in plan.takes:
            checks.append(take.check)
            sources.append(_Source(plan, take.rule.name, None, 0, take.rule))
        if plan.slot is not None:
            checks.append(plan.slot)
            sources.append(_Source(plan, "concurrent_requests", None, 0))
    for ref, reserve in reserves:
        checks.append(reserve)
        sources.append(_Source(None, "budget", ref, reserve.amount))
    return checks, sources


def _headers(sources: Sequence[_Source], result: Reservation) -> dict[str, str]:
    levels = []
    for i, level in result.levels.items():
        rule = sources[i].rule
        if rule is not None:
            levels.append((rule, level))
    return rate_limit_headers(levels)


def _limit_error(source: _Source, result: Reservation, provider: str | None = None) -> LimitExceeded:
    assert source.plan is not None
    limit, unit = source.plan.rule_for(source.limit_name)
    fields: dict[str, Any] = {
        "scope": source.plan.scope,
        "target": source.plan.target,
        "limit_name": source.limit_name,
        "limit": limit,
        "unit": unit,
        "retry_after": result.retry_after,
    }
    return ProviderOverLimit(provider=provider, **fields) if provider else LimitExceeded(**fields)
