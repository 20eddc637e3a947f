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
        value = _live(entry, now)
        if value is None and entry is not None:
            del self._data[self.prefix + key]  # expired
        return value

    def _put(self, key: str, value: Any, ttl: float | None, now: float) -> None:
        self._data[self.prefix + key] = _Entry(value, None if ttl is None else now + ttl)

    # ---- batched governance ---------------------------------------------------------------------
    # reserve and commit run once each for every governed request: each check or op looks its entry up
    # once, by its full key, and writes it back directly, rather than through _get/_put and one helper
    # per kind (benchmarks/bytecodes.py counted those calls as a third of the store's work per
    # request). What a value means (a bucket's level, live slots, a budget) is the module's functions
    # below, shared with the reads.

    async def reserve(self, checks: Sequence[Check]) -> Reservation:
        """Apply every check, or none of them (see :meth:`StateStore.reserve`)."""
        now = self._clock()
        data, prefix = self._data, self.prefix
        writes: list[tuple[str, Any, float | None]] = []  # (full key, value, expiry), applied if all pass
        levels: dict[int, BucketLevel] = {}
        failed: int | None = None
        retry_after = 0.0
        spent = reserved = 0
        for i, check in enumerate(checks):
            key = prefix + check.key
            value = _live(data.get(key), now)
            if isinstance(check, BucketTake):
                capacity, rate = check.capacity, check.rate
                tokens = _level(value, capacity, rate, now)
                taken = bucket.take(tokens, capacity, rate, check.amount)
                if not taken.ok:
                    failed = i if failed is None else failed
                    retry_after = max(retry_after, taken.retry_after)
                    continue
                reset = bucket.reset_after(taken.tokens, capacity, rate)
                levels[i] = BucketLevel(taken.tokens, reset)
                writes.append((key, _Bucket(taken.tokens, now), now + (reset + 1.0)))
            elif isinstance(check, SlotAcquire):
                slots = _live_slots(value, now)
                if check.member not in slots and len(slots) >= check.limit:
                    failed = i if failed is None else failed
                    # When a slot frees is unknowable; retrying after a second is a fair guess.
                    retry_after = max(retry_after, SLOT_RETRY_AFTER)
                    continue
                slots[check.member] = now + check.ttl
                writes.append((key, slots, max(slots.values())))
            else:
                state = _budget(value)
                if check.limit is not None and state["s"] + state["r"] + check.amount > check.limit:
                    if failed is None:
                        failed, spent, reserved = i, state["s"], state["r"]
                    continue
                state["r"] += check.amount
                writes.append((key, state, now + check.ttl))
        if failed is not None:
            return Reservation(
                ok=False, failed=failed, retry_after=retry_after, spent=spent, reserved=reserved
            )
        for key, value, expires in writes:
            data[key] = _Entry(value, expires)
        return Reservation(ok=True, levels=levels)

    def commit_soon(self, ops: Sequence[Op]) -> asyncio.Future[Committed] | None:
        """None: a commit in memory waits for nothing, so :meth:`commit` is as quick."""
        return None

    async def commit(self, ops: Sequence[Op]) -> Committed:
        """Apply every op (see :meth:`StateStore.commit`)."""
        now = self._clock()
        data, prefix = self._data, self.prefix
        spent: dict[int, int] = {}
        flags: list[str] = []
        for i, op in enumerate(ops):
            key = prefix + op.key
            entry = data.get(key)
            value = _live(entry, now)
            if isinstance(op, HashIncr):  # the cost ledger's increments: most ops of a settlement
                # Updated in place: a settlement adds 16 ledger fields, and rebuilding entries showed in
                # profiles.
                if entry is None or value is None:
                    value = {}
                    data[key] = _Entry(value, now + op.ttl)
                else:
                    entry.expires = now + op.ttl
                get = value.get
                for name, amount in op.fields:
                    value[name] = get(name, 0) + amount
            elif isinstance(op, BucketAdjust):
                capacity, rate = op.capacity, op.rate
                tokens = bucket.adjust(_level(value, capacity, rate, now), capacity, op.amount)
                expires = now + (bucket.reset_after(tokens, capacity, rate) + 1.0)
                data[key] = _Entry(_Bucket(tokens, now), expires)
            elif isinstance(op, SlotRelease):
                slots = _live_slots(value, now)
                slots.pop(op.member, None)
                if slots:
                    data[key] = _Entry(slots, max(slots.values()))
                else:
                    data.pop(key, None)
            else:
                state = _budget(value)
                left = state["r"] - op.release
                state["r"] = left if left > 0 else 0  # not max(): see limits/bucket.py
                state["s"] += op.charge
                data[key] = _Entry(state, now + op.ttl)
                spent[i] = state["s"]
                for flag, threshold in op.thresholds:
                    if state["s"] >= threshold and self._get(flag, now) is None:
                        self._put(flag, b"1", op.flag_ttl, now)
                        flags.append(flag)
        return Committed(spent=spent, flags=tuple(flags))

    # ---- reads ------------------------------------------------------------------------------------

    async def buckets(self, keys: Sequence[tuple[str, float, float]]) -> list[BucketState]:
        """The current level of each ``(key, capacity, rate)`` bucket."""
        now = self._clock()
        out = []
        for key, capacity, rate in keys:
            tokens = _level(self._get(key, now), capacity, rate, now)
            out.append(BucketState(tokens, bucket.reset_after(tokens, capacity, rate)))
        return out

    async def slots(self, keys: Sequence[str]) -> list[int]:
        """Live concurrency slots per key."""
        now = self._clock()
        return [len(_live_slots(self._get(key, now), now)) for key in keys]

    async def budgets(self, keys: Sequence[str]) -> list[BudgetState]:
        """Spend and reservations per budget period key."""
        now = self._clock()
        return [BudgetState(s["s"], s["r"]) for s in (_budget(self._get(key, now)) for key in keys)]

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


def _live(entry: _Entry | None, now: float) -> Any:
    """The value of an entry that has not expired; None for an expired or absent one."""
    if entry is None or (entry.expires is not None and entry.expires <= now):
        return None
    return entry.value


def _level(held: _Bucket | None, capacity: float, rate: float, now: float) -> float:
    """A bucket's tokens now; a bucket that does not exist (or expired) is full."""
    if held is None:
        return capacity
    return bucket.level(held.tokens, held.stamp, capacity, rate, now)


def _live_slots(slots: dict[str, float] | None, now: float) -> dict[str, float]:
    """The slots of a concurrency cap that have not expired, as a new dict."""
    if slots is None:
        return {}
    return {m: exp for m, exp in slots.items() if exp > now}


def _budget(found: dict[str, int] | None) -> dict[str, int]:
    """A budget period's spend (``s``) and reservations (``r``), as a new dict."""
    return dict(found) if found is not None else {"s": 0, "r": 0}
