"""The state store protocol: shared counters that every podium replica reads and updates atomically.

Two kinds of operations live here:

* generic primitives (``get``/``set``/``incr``/``try_lock``/``unlock``/``delete``) that any component
  can use to coordinate replicas (the health monitor elects one prober per provider with ``try_lock``);
* two batched, all-or-nothing operations that carry a whole request's governance in one round trip:
  :meth:`StateStore.reserve` (take rate-limit tokens, concurrency slots and budget reservations, or
  take nothing) before the upstream call, and :meth:`StateStore.commit` (refund tokens, free slots,
  turn reservations into spend, add to the ledger, flag crossed alert thresholds) after it.

Keys are relative: each store prepends its own ``prefix``, so tests and deployments can share one Redis.
Money is integer nano-dollars (1e-9 USD) everywhere in the store: sums stay exact, and every value a
ledger can reach fits in a double (and so in a Redis Lua number) without rounding.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Protocol, TypeAlias, runtime_checkable

import msgspec

NANOS_PER_USD = 1_000_000_000


def to_nanos(usd: float) -> int:
    """Dollars to integer nano-dollars, rounded to the nearest one."""
    return round(usd * NANOS_PER_USD)


def to_usd(nanos: int) -> float:
    """Integer nano-dollars to dollars."""
    return nanos / NANOS_PER_USD


# ---- checks: what reserve() takes, all or nothing ----------------------------------------------


class BucketTake(msgspec.Struct, frozen=True):
    """Take ``amount`` tokens from a token bucket that holds at most ``capacity`` and refills at ``rate``/s.

    A bucket that does not exist yet is full. The take succeeds when the bucket holds ``amount`` after
    refilling; ``amount`` above ``capacity`` is clamped to ``capacity`` so that a large request waits
    for a full bucket instead of being refused forever.
    """

    key: str
    capacity: float
    rate: float
    amount: float


class SlotAcquire(msgspec.Struct, frozen=True):
    """Hold one of ``limit`` concurrency slots under ``member`` until released or ``ttl`` seconds pass.

    The ttl frees slots of a replica that died mid-request.
    """

    key: str
    member: str
    limit: int
    ttl: float


class BudgetReserve(msgspec.Struct, frozen=True):
    """Reserve ``amount`` nano-dollars against a budget period.

    With ``limit`` set (a hard budget) the reservation succeeds only while
    ``spent + reserved + amount <= limit``; with ``limit`` None (a soft budget) it always succeeds.
    ``ttl`` keeps the period's record that long after its last update.
    """

    key: str
    limit: int | None
    amount: int
    ttl: float


Check: TypeAlias = BucketTake | SlotAcquire | BudgetReserve


class BucketLevel(msgspec.Struct, frozen=True):
    """A bucket after a successful take: what ``x-ratelimit-*`` headers report."""

    remaining: float
    reset: float
    """Seconds until the bucket is full again."""


class Reservation(msgspec.Struct, frozen=True):
    """The outcome of :meth:`StateStore.reserve`.

    Attributes:
        ok: Everything was taken. When False nothing was taken.
        failed: Index of the first check that could not be satisfied (None when ok).
        retry_after: Seconds after which every refused check could succeed (0 when ok).
        levels: For each ``BucketTake`` check, by index, its level after the take (empty when refused).
        spent: For a refused ``BudgetReserve``: the period's spend, nano-dollars.
        reserved: For a refused ``BudgetReserve``: the period's outstanding reservations, nano-dollars.
    """

    ok: bool
    failed: int | None = None
    retry_after: float = 0.0
    levels: Mapping[int, BucketLevel] = msgspec.field(default_factory=dict)
    spent: int = 0
    reserved: int = 0


# ---- ops: what commit() applies, unconditionally ------------------------------------------------


class BucketAdjust(msgspec.Struct, frozen=True):
    """Give back ``amount`` tokens (negative: take more, possibly below zero) to a token bucket.

    The bucket never rises above ``capacity``; going below zero is a debt that later requests wait out.
    """

    key: str
    capacity: float
    rate: float
    amount: float


class SlotRelease(msgspec.Struct, frozen=True):
    """Free the concurrency slot held under ``member``."""

    key: str
    member: str


class BudgetSettle(msgspec.Struct, frozen=True):
    """Turn a reservation into spend: ``reserved -= release``, ``spent += charge`` (nano-dollars).

    For every ``(flag_key, level)`` in ``thresholds`` whose level the new spend reached, the flag is set
    unless it already was (with ``flag_ttl``); the flags set by this call are reported, so exactly one
    replica sends each alert.
    """

    key: str
    release: int
    charge: int
    ttl: float
    thresholds: tuple[tuple[str, int], ...] = ()
    flag_ttl: float = 0.0


class HashIncr(msgspec.Struct, frozen=True):
    """Add integer amounts to fields of the hash ``key`` and keep the hash ``ttl`` seconds.

    Attributes:
        key: The hash.
        fields: ``(field, amount)`` pairs (one op per hash: a ledger settlement touches four hashes).
        ttl: Seconds the hash lives after this increment.
    """

    key: str
    fields: tuple[tuple[str, int], ...]
    ttl: float


Op: TypeAlias = BucketAdjust | SlotRelease | BudgetSettle | HashIncr


class Committed(msgspec.Struct, frozen=True):
    """The outcome of :meth:`StateStore.commit`.

    Attributes:
        spent: For each ``BudgetSettle`` op, by index, the period's spend after it (nano-dollars).
        flags: The threshold flag keys this call set (each set once per period across replicas).
    """

    spent: Mapping[int, int] = msgspec.field(default_factory=dict)
    flags: tuple[str, ...] = ()


class BucketState(msgspec.Struct, frozen=True):
    """A bucket's tokens now (after refill), for status reports."""

    tokens: float
    reset: float


class BudgetState(msgspec.Struct, frozen=True):
    """A budget period's totals, nano-dollars."""

    spent: int = 0
    reserved: int = 0


@runtime_checkable
class StateStore(Protocol):
    """Shared state for limits, budgets, the ledger, and cross-replica coordination.

    Implementations: :class:`~podium.state.memory.MemoryStateStore` (one process, the default) and
    :class:`~podium.state.redis.RedisStateStore` (shared by replicas; every multi-step update is one Lua
    script using the Redis server's clock).
    """

    prefix: str

    async def reserve(self, checks: Sequence[Check]) -> Reservation:
        """Apply every check, or none of them when one cannot be satisfied (one atomic step)."""
        ...

    async def commit(self, ops: Sequence[Op]) -> Committed:
        """Apply every op in one atomic step."""
        ...

    def commit_soon(self, ops: Sequence[Op]) -> asyncio.Future[Committed] | None:
        """Send the commit now and return its outcome's future, without waiting for the store's reply.

        Every later call from this process sees the commit applied. None when the store cannot do that
        at this moment (or gains nothing by it): call :meth:`commit`.
        """
        ...

    async def buckets(self, keys: Sequence[tuple[str, float, float]]) -> list[BucketState]:
        """The current level of each ``(key, capacity, rate)`` bucket (missing buckets are full)."""
        ...

    async def slots(self, keys: Sequence[str]) -> list[int]:
        """How many live concurrency slots each key holds."""
        ...

    async def budgets(self, keys: Sequence[str]) -> list[BudgetState]:
        """Spend and reservations of each budget period key."""
        ...

    async def hashes(self, keys: Sequence[str]) -> list[dict[str, int]]:
        """Every field of each integer hash (empty when missing)."""
        ...

    async def get(self, key: str) -> bytes | None:
        """The value stored under ``key``, or None."""
        ...

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """Store ``value`` under ``key``, expiring after ``ttl`` seconds when given."""
        ...

    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        """Add ``amount`` to the integer under ``key`` (0 when missing) and return the result.

        ``ttl``, when given, (re)sets the key's expiry.
        """
        ...

    async def try_lock(self, key: str, ttl: float) -> bool:
        """Take the lock ``key`` for ``ttl`` seconds unless someone holds it; True when taken."""
        ...

    async def unlock(self, key: str) -> None:
        """Release the lock ``key`` if this store instance holds it."""
        ...

    async def delete(self, *keys: str) -> None:
        """Remove the keys."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
