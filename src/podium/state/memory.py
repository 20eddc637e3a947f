"""The in-process state store: the default when podium runs as one process.

Every operation runs synchronously between two awaits of the event loop, so each is atomic for all
coroutines of the process without a lock. The clock is injectable so tests can drive time exactly.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from podium.limits import bucket  # the module, not the package API
from podium.state.base import (
    BucketAdjust,
    BucketLevel,
    BucketState,
    BucketTake,
    BudgetReserve,
    BudgetSettle,
    BudgetState,
    Check,
    Committed,
    HashIncr,
    Op,
    Reservation,
    SlotAcquire,
    SlotRelease,
)

SLOT_RETRY_AFTER = 1.0


@dataclass(slots=True)
class _Entry:
    value: Any
    expires: float | None


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


class MemoryStateStore:
    """A :class:`~podium.state.base.StateStore` held in this process's memory.

    Args:
        prefix: Prepended to every key (keeps independent users of one store apart).
        clock: Seconds since the epoch; ``time.time`` unless a test drives time.
    """

    def __init__(self, prefix: str = "podium:", clock: Callable[[], float] = time.time) -> None:
        self.prefix = prefix
        self._clock = clock
        self._data: dict[str, _Entry] = {}
        self._owner = uuid.uuid4().hex

    # ---- storage helpers ------------------------------------------------------------------------

    def _get(self, key: str, now: float) -> Any:
        entry = self._data.get(self.prefix + key)
        if entry is None:
            return None
        if entry.expires is not None and entry.expires <= now:
            del self._data[self.prefix + key]
            return None
        return entry.value

    def _put(self, key: str, value: Any, ttl: float | None, now: float) -> None:
        self._data[self.prefix + key] = _Entry(value, None if ttl is None else now + ttl)

    def _bucket_level(self, key: str, capacity: float, rate: float, now: float) -> float:
        state: _Bucket | None = self._get(key, now)
        if state is None:
            return capacity
        return bucket.level(state.tokens, state.stamp, capacity, rate, now)

    def _put_bucket(self, key: str, tokens: float, capacity: float, rate: float, now: float) -> None:
        self._put(key, _Bucket(tokens, now), bucket.reset_after(tokens, capacity, rate) + 1.0, now)

    def _live_slots(self, key: str, now: float) -> dict[str, float]:
        slots: dict[str, float] | None = self._get(key, now)
        if slots is None:
            return {}
        return {m: exp for m, exp in slots.items() if exp > now}

    def _budget(self, key: str, now: float) -> dict[str, int]:
        found: dict[str, int] | None = self._get(key, now)
        return dict(found) if found is not None else {"s": 0, "r": 0}

    # ---- batched governance ---------------------------------------------------------------------

    async def reserve(self, checks: Sequence[Check]) -> Reservation:
        """Apply every check, or none of them (see :meth:`StateStore.reserve`)."""
        now = self._clock()
        writes: list[Callable[[], None]] = []
        levels: dict[int, BucketLevel] = {}
        failed: int | None = None
        retry_after = 0.0
        spent = reserved = 0
        for i, check in enumerate(checks):
            if isinstance(check, BucketTake):
                tokens = self._bucket_level(check.key, check.capacity, check.rate, now)
                taken = bucket.take(tokens, check.capacity, check.rate, check.amount)
                if not taken.ok:
                    failed = i if failed is None else failed
                    retry_after = max(retry_after, taken.retry_after)
                    continue
                levels[i] = BucketLevel(
                    taken.tokens, bucket.reset_after(taken.tokens, check.capacity, check.rate)
                )
                writes.append(self._bucket_writer(check, taken.tokens, now))
            elif isinstance(check, SlotAcquire):
                slots = self._live_slots(check.key, now)
                if check.member not in slots and len(slots) >= check.limit:
                    failed = i if failed is None else failed
                    # When a slot frees is unknowable; retrying after a second is a fair guess.
                    retry_after = max(retry_after, SLOT_RETRY_AFTER)
                    continue
                slots[check.member] = now + check.ttl
                writes.append(self._slots_writer(check.key, slots, now))
            else:
                state = self._budget(check.key, now)
                if check.limit is not None and state["s"] + state["r"] + check.amount > check.limit:
                    if failed is None:
                        failed, spent, reserved = i, state["s"], state["r"]
                    continue
                state["r"] += check.amount
                writes.append(self._budget_writer(check, state, now))
        if failed is not None:
            return Reservation(
                ok=False, failed=failed, retry_after=retry_after, spent=spent, reserved=reserved
            )
        for write in writes:
            write()
        return Reservation(ok=True, levels=levels)

    def _bucket_writer(self, check: BucketTake, tokens: float, now: float) -> Callable[[], None]:
        return lambda: self._put_bucket(check.key, tokens, check.capacity, check.rate, now)

    def _slots_writer(self, key: str, slots: dict[str, float], now: float) -> Callable[[], None]:
        return lambda: self._put(key, slots, max(slots.values()) - now, now)

    def _budget_writer(self, check: BudgetReserve, state: dict[str, int], now: float) -> Callable[[], None]:
        return lambda: self._put(check.key, state, check.ttl, now)

    def commit_soon(self, ops: Sequence[Op]) -> asyncio.Future[Committed] | None:
        """None: a commit in memory waits for nothing, so :meth:`commit` is as quick."""
        return None

    async def commit(self, ops: Sequence[Op]) -> Committed:
        """Apply every op (see :meth:`StateStore.commit`)."""
        now = self._clock()
        spent: dict[int, int] = {}
        flags: list[str] = []
        for i, op in enumerate(ops):
            if isinstance(op, HashIncr):  # the cost ledger's increments: most ops of a settlement
                values = self._hash(op, now)
                for name, amount in op.fields:
                    values[name] = values.get(name, 0) + amount
            elif isinstance(op, BucketAdjust):
                tokens = self._bucket_level(op.key, op.capacity, op.rate, now)
                self._put_bucket(
                    op.key, bucket.adjust(tokens, op.capacity, op.amount), op.capacity, op.rate, now
                )
            elif isinstance(op, SlotRelease):
                slots = self._live_slots(op.key, now)
                slots.pop(op.member, None)
                if slots:
                    self._put(op.key, slots, max(slots.values()) - now, now)
                else:
                    self._data.pop(self.prefix + op.key, None)
            elif isinstance(op, BudgetSettle):
                state = self._budget(op.key, now)
                state["r"] = max(0, state["r"] - op.release)
                state["s"] += op.charge
                self._put(op.key, state, op.ttl, now)
                spent[i] = state["s"]
                for flag, threshold in op.thresholds:
                    if state["s"] >= threshold and self._get(flag, now) is None:
                        self._put(flag, b"1", op.flag_ttl, now)
                        flags.append(flag)
        return Committed(spent=spent, flags=tuple(flags))

    def _hash(self, op: HashIncr, now: float) -> dict[str, int]:
        """The live hash ``op`` adds to (created empty if absent or expired), its expiry renewed."""
        # Updated in place: a settlement adds 16 ledger fields, and rebuilding entries showed in profiles.
        key = self.prefix + op.key
        expires = now + op.ttl
        entry = self._data.get(key)
        if entry is None or (entry.expires is not None and entry.expires <= now):
            values: dict[str, int] = {}
            self._data[key] = _Entry(values, expires)
            return values
        entry.expires = expires
        found: dict[str, int] = entry.value
        return found

    # ---- reads ------------------------------------------------------------------------------------

    async def buckets(self, keys: Sequence[tuple[str, float, float]]) -> list[BucketState]:
        """The current level of each ``(key, capacity, rate)`` bucket."""
        now = self._clock()
        out = []
        for key, capacity, rate in keys:
            tokens = self._bucket_level(key, capacity, rate, now)
            out.append(BucketState(tokens, bucket.reset_after(tokens, capacity, rate)))
        return out

    async def slots(self, keys: Sequence[str]) -> list[int]:
        """Live concurrency slots per key."""
        now = self._clock()
        return [len(self._live_slots(key, now)) for key in keys]

    async def budgets(self, keys: Sequence[str]) -> list[BudgetState]:
        """Spend and reservations per budget period key."""
        now = self._clock()
        return [BudgetState(s["s"], s["r"]) for s in (self._budget(key, now) for key in keys)]

    async def hashes(self, keys: Sequence[str]) -> list[dict[str, int]]:
        """Every field of each integer hash."""
        now = self._clock()
        return [dict(self._get(key, now) or {}) for key in keys]

    # ---- generic primitives -----------------------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        """The bytes stored under ``key``, or None."""
        value = self._get(key, self._clock())
        return value if isinstance(value, bytes) else None

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """Store bytes under ``key``."""
        self._put(key, bytes(value), ttl, self._clock())

    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        """Add to the integer under ``key`` and return the result."""
        now = self._clock()
        entry = self._data.get(self.prefix + key)
        current = self._get(key, now)
        total = (current if isinstance(current, int) else 0) + amount
        expires = None if entry is None or self._get(key, now) is None else entry.expires
        self._data[self.prefix + key] = _Entry(total, now + ttl if ttl is not None else expires)
        return total

    async def try_lock(self, key: str, ttl: float) -> bool:
        """Take the lock unless it is held; True when taken."""
        now = self._clock()
        if self._get(key, now) is not None:
            return False
        self._put(key, self._owner.encode(), ttl, now)
        return True

    async def unlock(self, key: str) -> None:
        """Release the lock if this store holds it."""
        if self._get(key, self._clock()) == self._owner.encode():
            self._data.pop(self.prefix + key, None)

    async def delete(self, *keys: str) -> None:
        """Remove the keys."""
        for key in keys:
            self._data.pop(self.prefix + key, None)

    async def aclose(self) -> None:
        """Nothing to release."""
