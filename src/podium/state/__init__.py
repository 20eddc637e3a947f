"""Shared state for limits, budgets and the ledger: in-process by default, Redis across replicas.

Typical use::

    store = open_state_store(settings.redis_url)          # MemoryStateStore when the URL is None
    if await store.try_lock("health:probe:gpt", ttl=30):  # one replica probes, the others wait
        ...
"""

from typing import TYPE_CHECKING

from podium._lazy import lazy_exports
from podium.state.base import (
    NANOS_PER_USD,
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
    StateStore,
    to_nanos,
    to_usd,
)
from podium.state.memory import MemoryStateStore

if TYPE_CHECKING:
    from podium.state.redis import RedisStateStore

# redis-py is imported only by processes that use Redis (it costs start-up time and memory).
__getattr__ = lazy_exports(__name__, {"RedisStateStore": "podium.state.redis"})


def open_state_store(redis_url: str | None = None, prefix: str = "podium:") -> StateStore:
    """Redis when ``redis_url`` is given (shared by replicas), otherwise an in-process store."""
    if redis_url is None:
        return MemoryStateStore(prefix)
    from podium.state.redis import RedisStateStore

    return RedisStateStore.from_url(redis_url, prefix)


__all__ = [
    "NANOS_PER_USD",
    "BucketAdjust",
    "BucketLevel",
    "BucketState",
    "BucketTake",
    "BudgetReserve",
    "BudgetSettle",
    "BudgetState",
    "Check",
    "Committed",
    "HashIncr",
    "MemoryStateStore",
    "Op",
    "RedisStateStore",
    "Reservation",
    "SlotAcquire",
    "SlotRelease",
    "StateStore",
    "open_state_store",
    "to_nanos",
    "to_usd",
]
