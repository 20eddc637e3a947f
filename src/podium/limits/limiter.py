"""Rate limits per tenant, provider and API key: token buckets and concurrency caps in the state store.

The limiter turns a ``(scope, target)``'s configuration into state-store checks (:meth:`Limiter.plan`)
so the :class:`~podium.limits.guard.Guard` can submit every limit of a request, plus its budget
reservation, in one atomic step. Request buckets take 1 per request; token buckets take the request's
estimated tokens, and the difference to the real usage is given back (or owed) when it settles.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from podium.errors import NotFound, RateLimitExceeded, RequestError
from podium.limits.config import SCOPES, BucketRule, LimitScope, RateLimitConfig
from podium.state.base import (
    BucketAdjust,
    BucketLevel,
    BucketTake,
    Op,
    SlotAcquire,
    SlotRelease,
    StateStore,
)


def bucket_key(scope: str, target: str, name: str) -> str:
    """The state key of one limit's bucket."""
    return f"rl:{scope}:{target}:{name}"


def slot_key(scope: str, target: str) -> str:
    """The state key of a target's concurrency slots."""
    return f"cc:{scope}:{target}"


class _Take(msgspec.Struct, frozen=True):
    check: BucketTake
    rule: BucketRule

    @property
    def taken(self) -> float:
        return min(self.check.amount, self.check.capacity)


@dataclass(slots=True)
class LimitPlan:
    """The checks one request makes against one ``(scope, target)``, and how to settle them.

    Attributes:
        scope: ``tenant``, ``provider`` or ``key``.
        target: The tenant, provider or API key id.
        config: Its limits.
        takes: The bucket checks, with the rule each comes from.
        slot: The concurrency slot check, when a cap is configured.
    """

    scope: LimitScope
    target: str
    config: RateLimitConfig
    takes: list[_Take] = field(default_factory=list)
    slot: SlotAcquire | None = None

    def settle_ops(self, used_tokens: int | None) -> list[Op]:
        """Refund unused estimated tokens (``used_tokens`` None: refund all) and free the slot."""
        ops: list[Op] = []
        for take in self.takes:
            if take.rule.unit == "tokens":
                back = take.taken - (used_tokens if used_tokens is not None else 0)
                if back != 0:
                    ops.append(BucketAdjust(take.check.key, take.check.capacity, take.check.rate, back))
        if self.slot is not None:
            ops.append(SlotRelease(self.slot.key, self.slot.member))
        return ops

    def rule_for(self, limit_name: str) -> tuple[float, str]:
        """The configured value and unit of a limit by name."""
        if limit_name == "concurrent_requests":
            return float(self.config.concurrent_requests or 0), "requests"
        rule = next(t.rule for t in self.takes if t.rule.name == limit_name)
        return rule.capacity, rule.unit


class LimitLevel(msgspec.Struct, frozen=True, kw_only=True):
    """One limit's state now: what ``x-ratelimit-*`` headers report."""

    name: str
    limit: float
    remaining: float
    reset: float


class LimitStatus(msgspec.Struct, frozen=True, kw_only=True):
    """Configuration and live state of one ``(scope, target)``.

    Attributes:
        limits: The configured limits, camelCase as the seed writes them.
        levels: Each bucket's remaining capacity and seconds until it is full.
        in_flight: Requests holding a concurrency slot (None when no cap is configured).
    """

    scope: str
    target: str
    limits: dict[str, float]
    levels: list[LimitLevel]
    in_flight: int | None = None


class LimitExceeded(RateLimitExceeded):
    """A podium rate limit refused the request (HTTP 429).

    Attributes:
        retry_after: Seconds after which the request would be admitted.
        scope: ``tenant``, ``provider`` or ``key``.
        target: Whose limit it is.
        limit_name: The limit that refused (``requests_per_minute``, ``concurrent_requests``, ...).
        limit: The configured value of that limit.
        unit: ``requests`` or ``tokens``.
    """

    def __init__(
        self, *, scope: str, target: str, limit_name: str, limit: float, unit: str, retry_after: float
    ) -> None:
        super().__init__(
            f"rate limit {limit_name}={limit:g} of {scope} {target!r} exceeded; "
            f"retry after {retry_after:.3g}s",
            retry_after=retry_after,
        )
        self.scope = scope
        self.target = target
        self.limit_name = limit_name
        self.limit = limit
        self.unit = unit

    def headers(self) -> dict[str, str]:
        """``Retry-After`` and the ``x-ratelimit-*`` headers of the refusing limit."""
        return {
            "retry-after": str(max(1, math.ceil(self.retry_after))),
            f"x-ratelimit-limit-{self.unit}": _count(self.limit),
            f"x-ratelimit-remaining-{self.unit}": "0",
            f"x-ratelimit-reset-{self.unit}": f"{self.retry_after:.3f}s",
        }


def rate_limit_headers(levels: Sequence[tuple[BucketRule, BucketLevel]]) -> dict[str, str]:
    """``x-ratelimit-{limit,remaining,reset}-{requests,tokens}`` from the tightest bucket of each unit."""
    # One pass: per unit, the bucket with the smallest share left (the first of equals).
    tightest: dict[str, tuple[float, BucketRule, BucketLevel]] = {}
    for rule, lvl in levels:
        share = lvl.remaining / rule.capacity
        held = tightest.get(rule.unit)
        if held is None or share < held[0]:
            tightest[rule.unit] = (share, rule, lvl)
    headers: dict[str, str] = {}
    for unit in ("requests", "tokens"):
        found = tightest.get(unit)
        if found is None:
            continue
        _, rule, lvl = found
        headers[f"x-ratelimit-limit-{unit}"] = _count(rule.capacity)
        left = math.floor(lvl.remaining)
        headers[f"x-ratelimit-remaining-{unit}"] = str(left if left > 0 else 0)
        headers[f"x-ratelimit-reset-{unit}"] = f"{lvl.reset:.3f}s"
    return headers


# A configuration with its rules and their bucket keys.
_Compiled = tuple[RateLimitConfig, list[tuple[BucketRule, str]]]


def _count(value: float) -> str:
    # OpenAI sends whole numbers ("1000000"); "%g" would write large limits as "1e+06".
    return str(int(value)) if value == int(value) else f"{value:g}"


def _scope(scope: str) -> LimitScope:
    if scope not in SCOPES:
        raise RequestError(
            f"unknown rate-limit scope {scope!r}; use one of: {', '.join(SCOPES)}", param="scope"
        )
    return scope


class Limiter:
    """Holds rate-limit configurations and turns them into state-store checks.

    Args:
        store: Where buckets and slots live (shared by replicas when it is Redis).
        slot_ttl: Seconds after which a concurrency slot of a request that never finished (its replica
            died) is freed.
    """

    def __init__(self, store: StateStore, *, slot_ttl: float = 600.0) -> None:
        self.store = store
        self.slot_ttl = slot_ttl
        self._configs: dict[tuple[LimitScope, str], RateLimitConfig] = {}
        self._compiled: dict[tuple[LimitScope, str], _Compiled] = {}

    def set(self, scope: str, target: str, limits: RateLimitConfig | Mapping[str, Any]) -> RateLimitConfig:
        """Set (replace) the limits of ``target`` in ``scope``.

        Raises:
            RequestError: unknown scope, unknown limit names, or invalid values.
        """
        from pydantic import ValidationError

        if not target:
            raise RequestError("a rate limit needs a target", param="target")
        try:
            config = limits if isinstance(limits, RateLimitConfig) else RateLimitConfig.model_validate(limits)
        except ValidationError as exc:
            raise RequestError(f"invalid rate limits for {scope} {target!r}: {exc}", param="limits") from exc
        key = (_scope(scope), target)
        self._configs[key] = config
        self._compiled.pop(key, None)
        return config

    def get(self, scope: str, target: str) -> RateLimitConfig | None:
        """The limits of ``target`` in ``scope``, or None."""
        return self._configs.get((_scope(scope), target))

    def remove(self, scope: str, target: str) -> None:
        """Stop limiting ``target`` in ``scope``.

        Raises:
            NotFound: it has no limits.
        """
        key = (_scope(scope), target)
        self._compiled.pop(key, None)
        if self._configs.pop(key, None) is None:
            raise NotFound(f"no rate limits set for {scope} {target!r}")

    def configured(self) -> list[tuple[str, str, RateLimitConfig]]:
        """Every ``(scope, target, limits)``."""
        return [(s, t, c) for (s, t), c in sorted(self._configs.items())]

    def plan(self, scope: LimitScope, target: str, tokens: int, member: str) -> LimitPlan | None:
        """The checks a request of ``tokens`` estimated tokens makes (None when nothing is limited)."""
        compiled = self._compiled.get((scope, target))
        if compiled is None:
            config = self._configs.get((scope, target))
            if config is None:
                return None
            # Rules and state keys are fixed until the limits change: built once, not per request.
            compiled = (config, [(r, bucket_key(scope, target, r.name)) for r in config.rules()])
            self._compiled[(scope, target)] = compiled
        config, rules = compiled
        plan = LimitPlan(scope, target, config)
        for rule, key in rules:
            amount = 1.0 if rule.unit == "requests" else float(tokens)
            if amount > 0:
                plan.takes.append(_Take(BucketTake(key, rule.capacity, rule.rate, amount), rule))
        if config.concurrent_requests is not None:
            plan.slot = SlotAcquire(
                slot_key(scope, target), member, config.concurrent_requests, self.slot_ttl
            )
        return plan

    async def status(self, scope: str, target: str) -> LimitStatus:
        """The configured limits and their live levels.

        Raises:
            NotFound: ``target`` has no limits in ``scope``.
        """
        checked = _scope(scope)
        config = self._configs.get((checked, target))
        if config is None:
            raise NotFound(f"no rate limits set for {scope} {target!r}")
        rules = config.rules()
        states = await self.store.buckets(
            [(bucket_key(checked, target, r.name), r.capacity, r.rate) for r in rules]
        )
        in_flight = None
        if config.concurrent_requests is not None:
            (in_flight,) = await self.store.slots([slot_key(checked, target)])
        return LimitStatus(
            scope=checked,
            target=target,
            limits=config.model_dump(by_alias=True, exclude_none=True),
            levels=[
                LimitLevel(name=r.name, limit=r.capacity, remaining=max(0.0, s.tokens), reset=s.reset)
                for r, s in zip(rules, states, strict=True)
            ],
            in_flight=in_flight,
        )

    async def reset(self, scope: str, target: str) -> None:
        """Refill every bucket of ``target`` and free its slots (its configuration stays)."""
        checked = _scope(scope)
        names = [n for n in RateLimitConfig.model_fields if n.endswith(("second", "minute", "hour"))]
        await self.store.delete(*(bucket_key(checked, target, n) for n in names), slot_key(checked, target))
