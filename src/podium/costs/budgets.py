"""Budgets: daily and monthly spending limits per tenant, optionally per API key.

Periods are calendar-aligned in the budget's time zone (UTC by default): a daily budget resets at local
midnight, a monthly one on the 1st. Spend and outstanding reservations live in the state store, one
record per period, so every replica enforces the same numbers. A hard budget refuses a request whose
maximum possible cost does not fit (``spent + reserved + max_cost > limit``) with ``BudgetExceeded``
(HTTP 402); a soft one only alerts. Period boundaries come from this process's clock (replicas are
expected to run NTP); the amounts themselves are updated atomically by the store.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Self
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from podium._settings_schema import SecretUrl, masked_repr_args
from podium.errors import NotFound, RequestError
from podium.state.base import BudgetReserve, BudgetSettle, StateStore, to_nanos, to_usd

PeriodName = Literal["daily", "monthly"]
_KEEP_AFTER_END = timedelta(days=2)


class Budget(BaseModel):
    """A spending limit in US dollars and how to alert on it (camelCase keys accepted).

    Attributes:
        daily: Limit per calendar day (None: no daily limit).
        monthly: Limit per calendar month (None: no monthly limit).
        alert_emails: Who is emailed when a threshold is crossed.
        alert_webhook: Where a JSON alert is POSTed.
        enforce_hard_limit: Refuse requests that could exceed the limit (otherwise alert only).
        thresholds: Fractions of the limit at which alerts are sent (1.0 = 100%).
        timezone: IANA time zone the periods follow.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, alias_generator=to_camel, frozen=True)

    daily: float | None = Field(default=None, ge=0)
    monthly: float | None = Field(default=None, ge=0)
    alert_emails: tuple[str, ...] = ()
    alert_webhook: SecretUrl | None = None
    enforce_hard_limit: bool = False
    thresholds: tuple[float, ...] = (0.5, 0.8, 1.0)
    timezone: str = "UTC"

    @field_validator("alert_webhook")
    @classmethod
    def _webhook(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("alert_emails")
    @classmethod
    def _emails(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for email in value:
            local, _, domain = email.partition("@")
            if not local or "." not in domain:
                raise ValueError(f"{email!r} is not an email address")
        return value

    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(t <= 0 for t in value):
            raise ValueError("thresholds are fractions of the budget above 0 (1.0 = 100%)")
        return tuple(sorted(set(value)))

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/Paris)") from exc
        return value

    @model_validator(mode="after")
    def _some(self) -> Self:
        if self.daily is None and self.monthly is None:
            raise ValueError("a budget needs daily, monthly, or both")
        return self

    def __repr_args__(self) -> Iterable[tuple[str | None, Any]]:
        return masked_repr_args(self, super().__repr_args__())  # the webhook URL is a credential

    def limit(self, period: PeriodName) -> float | None:
        """The limit of one period."""
        return self.daily if period == "daily" else self.monthly


@dataclass(frozen=True, slots=True)
class Period:
    """One calendar period of a budget."""

    name: PeriodName
    id: str
    start: datetime
    end: datetime


def period_of(name: PeriodName, now: datetime, timezone: str) -> Period:
    """The calendar day or month containing ``now`` in ``timezone``."""
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    if name == "daily":
        start = datetime(local.year, local.month, local.day, tzinfo=zone)
        end = datetime.combine(start.date() + timedelta(days=1), start.time(), tzinfo=zone)
        return Period(name, start.date().isoformat(), start, end)
    start = datetime(local.year, local.month, 1, tzinfo=zone)
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    return Period(name, f"{local.year:04d}-{local.month:02d}", start, datetime(year, month, 1, tzinfo=zone))


@dataclass(frozen=True, slots=True)
class BudgetRef:
    """One budget period a request reserved against: enough to settle it and to alert on it.

    Attributes:
        scope: ``tenant:<tenant>:<period>`` or ``key:<key id>:<period>`` (``BudgetExceeded.scope``).
        tenant: The tenant.
        key_id: The API key for per-key budgets.
        budget: The budget's configuration.
        period: The period.
        key: The state key of the period's record.
        limit: The period's limit, nano-dollars.
    """

    scope: str
    tenant: str
    key_id: str | None
    budget: Budget
    period: Period
    key: str
    limit: int
    # (flag key, nano-dollar level) of each alert threshold: the same for every settlement of the period.
    levels: tuple[tuple[str, int], ...] = field(init=False, repr=False, compare=False)
    # POSIX time until which the period's record is kept: ttl() runs for every reservation and
    # settlement, where one float subtraction is cheaper than datetime arithmetic.
    keep_until: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        levels = tuple((self.flag(t), math.ceil(t * self.limit)) for t in self.budget.thresholds)
        object.__setattr__(self, "levels", levels)
        object.__setattr__(self, "keep_until", (self.period.end + _KEEP_AFTER_END).timestamp())

    def ttl(self, now: datetime) -> float:
        """Seconds to keep the period's record: until a little after the period ends."""
        left = self.keep_until - now.timestamp()
        return left if left > 1.0 else 1.0  # not max(): see limits/bucket.py

    def flag(self, threshold: float | str) -> str:
        """The state key marking that ``threshold``'s alert (or ``"refused"``) was sent this period."""
        name = threshold if isinstance(threshold, str) else f"{threshold:g}"
        return f"{self.key}:alert:{name}"

    def reserve(self, amount: int, now: datetime) -> BudgetReserve:
        """The check reserving ``amount`` nano-dollars (refusing only for a hard budget)."""
        return BudgetReserve(
            self.key, self.limit if self.budget.enforce_hard_limit else None, amount, self.ttl(now)
        )

    def settle(self, release: int, charge: int, now: datetime) -> BudgetSettle:
        """The op releasing ``release`` and charging ``charge`` nano-dollars, flagging crossed thresholds."""
        ttl = self.ttl(now)
        return BudgetSettle(self.key, release, charge, ttl, self.levels, ttl)


class PeriodStatus(msgspec.Struct, frozen=True, kw_only=True):
    """Spend of one budget period, in US dollars."""

    period: str
    limit: float
    spent: float
    reserved: float
    remaining: float
    percent_used: float
    starts_at: datetime
    resets_at: datetime


class BudgetStatus(msgspec.Struct, frozen=True, kw_only=True):
    """A budget's configuration and its current periods.

    ``alert_webhook`` shows only scheme and host (path and query may hold a credential).
    """

    tenant: str
    key_id: str | None
    enforce_hard_limit: bool
    thresholds: list[float]
    timezone: str
    alert_emails: list[str]
    alert_webhook: str | None
    periods: list[PeriodStatus]


def _safe_url(url: str | None) -> str | None:
    if url is None:
        return None
    parts = urlsplit(url)
    # Slack-style webhooks carry their credential in the path, others in the query: show neither.
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}/.."


_MAX_CACHED_REFS = 10_000


class Budgets:
    """Budget configurations, and the reservations and settlements they imply.

    Args:
        store: Where spend and reservations live.
        clock: Current time (timezone-aware); injectable for tests.
    """

    def __init__(self, store: StateStore, clock: Any = None) -> None:
        self.store = store
        self._clock = clock or functools.partial(datetime.now, UTC)  # C-level: no Python frame per call
        self._configs: dict[tuple[str, str | None], Budget] = {}
        # refs() per (tenant, key): reused until a period ends or a budget changes, since building them
        # (time zones, period bounds, keys) on every request showed in profiles.
        self._refs: dict[tuple[str, str | None], tuple[datetime, datetime, list[BudgetRef]]] = {}

    def now(self) -> datetime:
        """The current time as the budgets see it."""
        now: datetime = self._clock()
        return now

    def set(
        self,
        tenant: str,
        budget: Budget | Mapping[str, Any] | None = None,
        *,
        key_id: str | None = None,
        **fields: Any,
    ) -> Budget:
        """Set (replace) the budget of a tenant, or of one of its API keys.

        Args:
            tenant: The tenant.
            budget: The budget, or a dict of its fields; or pass the fields as keywords.
            key_id: Budget one API key of the tenant instead of the whole tenant.
            **fields: ``daily``, ``monthly``, ``alert_emails``, ... (camelCase accepted).

        Raises:
            RequestError: the fields are invalid.
        """
        if not tenant:
            raise RequestError("a budget needs a tenant", param="tenant")
        try:
            if isinstance(budget, Budget):
                config = budget
            else:
                config = Budget.model_validate({**dict(budget or {}), **fields})
        except ValidationError as exc:
            raise RequestError(f"invalid budget for tenant {tenant!r}: {exc}", param="budget") from exc
        self._configs[(tenant, key_id)] = config
        self._refs.clear()
        return config

    def get(self, tenant: str, key_id: str | None = None) -> Budget | None:
        """The budget of a tenant (or API key), or None."""
        return self._configs.get((tenant, key_id))

    def remove(self, tenant: str, key_id: str | None = None) -> None:
        """Remove a budget (its recorded spend stays until its periods expire).

        Raises:
            NotFound: there is no such budget.
        """
        self._refs.clear()
        if self._configs.pop((tenant, key_id), None) is None:
            raise NotFound(f"no budget set for tenant {tenant!r}" + (f" key {key_id!r}" if key_id else ""))

    def configured(self) -> list[tuple[str, str | None, Budget]]:
        """Every ``(tenant, key_id, budget)``."""
        return [(t, k, b) for (t, k), b in self._configs.items()]

    def refs(self, tenant: str, key_id: str | None, now: datetime) -> list[BudgetRef]:
        """The budget periods a request of ``tenant`` (through ``key_id``) counts against."""
        cached = self._refs.get((tenant, key_id))
        if cached is not None and cached[0] <= now < cached[1]:
            return list(cached[2])
        out = self._build_refs(tenant, key_id, now)
        if len(self._refs) >= _MAX_CACHED_REFS:  # many API keys: start over rather than grow without end
            self._refs.clear()
        # Valid while ``now`` stays inside every period; without a budget, until a budget is set.
        starts = [r.period.start for r in out]
        ends = [r.period.end for r in out]
        self._refs[(tenant, key_id)] = (
            max(starts, default=datetime.min.replace(tzinfo=UTC)),
            min(ends, default=datetime.max.replace(tzinfo=UTC)),
            out,
        )
        return list(out)

    def _build_refs(self, tenant: str, key_id: str | None, now: datetime) -> list[BudgetRef]:
        out = []
        for owner in (None, key_id) if key_id is not None else (None,):
            budget = self._configs.get((tenant, owner))
            if budget is None:
                continue
            for name in ("daily", "monthly"):
                limit = budget.limit(name)
                if limit is None:
                    continue
                period = period_of(name, now, budget.timezone)
                who = f"tenant:{tenant}" if owner is None else f"key:{owner}"
                key = f"bg:{tenant}:{'-' if owner is None else owner}:{name}:{period.id}"
                out.append(BudgetRef(f"{who}:{name}", tenant, owner, budget, period, key, to_nanos(limit)))
        return out

    async def status(self, tenant: str, key_id: str | None = None) -> BudgetStatus:
        """Limits, spend and outstanding reservations of each current period.

        Raises:
            NotFound: there is no such budget.
        """
        budget = self.get(tenant, key_id)
        if budget is None:
            raise NotFound(f"no budget set for tenant {tenant!r}" + (f" key {key_id!r}" if key_id else ""))
        refs = [r for r in self.refs(tenant, key_id, self.now()) if r.key_id == key_id]
        states = await self.store.budgets([r.key for r in refs])
        periods = []
        for ref, state in zip(refs, states, strict=True):
            periods.append(
                PeriodStatus(
                    period=ref.period.name,
                    limit=to_usd(ref.limit),
                    spent=to_usd(state.spent),
                    reserved=to_usd(state.reserved),
                    remaining=to_usd(max(0, ref.limit - state.spent - state.reserved)),
                    percent_used=100.0 * state.spent / ref.limit if ref.limit else 100.0,
                    starts_at=ref.period.start,
                    resets_at=ref.period.end,
                )
            )
        return BudgetStatus(
            tenant=tenant,
            key_id=key_id,
            enforce_hard_limit=budget.enforce_hard_limit,
            thresholds=list(budget.thresholds),
            timezone=budget.timezone,
            alert_emails=list(budget.alert_emails),
            alert_webhook=_safe_url(budget.alert_webhook),
            periods=periods,
        )
