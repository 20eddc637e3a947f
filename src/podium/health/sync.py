"""Sharing health between replicas through the state store, in the background.

Every ``sync_interval`` each replica writes its own window and open circuits under its own key, keeps
itself listed in a roster (updated under a lock), and reads the others' entries: so every replica
reports the same health and skips a circuit another replica opened, within one interval, while the
request path itself never waits on the store.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

import msgspec

from podium.health.registry import HealthRegistry

log = logging.getLogger(__name__)


class SharedStore(Protocol):
    """The state-store primitives health needs (``podium.state.StateStore`` provides them)."""

    async def get(self, key: str) -> bytes | None:
        """The value under ``key``, or None."""
        ...

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds."""
        ...

    async def try_lock(self, key: str, ttl: float) -> bool:
        """Take the lock ``key`` for ``ttl`` seconds unless it is held."""
        ...

    async def unlock(self, key: str) -> None:
        """Release the lock ``key`` if held by this store."""
        ...

    async def delete(self, *keys: str) -> None:
        """Remove keys."""
        ...


class HealthSync:
    """Exchanges one replica's health with the others.

    Args:
        registry: This replica's health registry.
        store: The shared state store.
        replica_id: This replica's id (random by default).
        clock: Wall-clock seconds.
    """

    def __init__(
        self,
        registry: HealthRegistry,
        store: SharedStore,
        replica_id: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry
        self.store = store
        self.replica_id = replica_id or uuid.uuid4().hex[:12]
        self._clock = clock
        prefix = registry.settings.key_prefix
        self._roster_key = f"{prefix}:roster"
        self._lock_key = f"{prefix}:roster-lock"
        self._prefix = prefix
        # An entry lives for three intervals: a replica that died drops out of everyone's figures soon.
        self.ttl = 3 * registry.settings.sync_interval + 1.0

    def _key(self, replica: str) -> str:
        return f"{self._prefix}:replica:{replica}"

    async def sync_once(self) -> None:
        """Publish this replica's figures, then take in every other live replica's."""
        await self.store.set(
            self._key(self.replica_id), msgspec.msgpack.encode(self.registry.export()), self.ttl
        )
        roster = await self._roster()
        now = self._clock()
        if roster.get(self.replica_id, 0.0) < now + self.ttl / 2:
            roster = await self._join(now)
        others: dict[str, dict[str, Any]] = {}
        for replica, expires in roster.items():
            if replica == self.replica_id or expires <= now:
                continue
            raw = await self.store.get(self._key(replica))
            if raw is not None:
                others[replica] = msgspec.msgpack.decode(raw)
        self.registry.absorb(others)

    async def leave(self) -> None:
        """Withdraw this replica's figures (on shutdown)."""
        await self.store.delete(self._key(self.replica_id))
        if await self.store.try_lock(self._lock_key, 5.0):
            try:
                roster = await self._roster()
                roster.pop(self.replica_id, None)
                await self.store.set(self._roster_key, msgspec.msgpack.encode(roster), self.ttl * 10)
            finally:
                await self.store.unlock(self._lock_key)

    async def _roster(self) -> dict[str, float]:
        raw = await self.store.get(self._roster_key)
        if raw is None:
            return {}
        try:
            data = msgspec.msgpack.decode(raw, type=dict[str, float])
        except msgspec.DecodeError:
            log.warning("health roster in the state store is unreadable; starting a new one")
            return {}
        return data

    async def _join(self, now: float) -> dict[str, float]:
        # Read-modify-write of the roster under a lock, or replicas joining together would drop each other.
        if not await self.store.try_lock(self._lock_key, 5.0):
            return await self._roster()
        try:
            roster = {r: e for r, e in (await self._roster()).items() if e > now}
            roster[self.replica_id] = now + self.ttl
            await self.store.set(self._roster_key, msgspec.msgpack.encode(roster), self.ttl * 10)
            return roster
        finally:
            await self.store.unlock(self._lock_key)
