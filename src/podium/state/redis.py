"""The Redis state store: limits, budgets and the ledger shared exactly by every podium replica.

Each multi-step update is one Lua script (``scripts/*.lua`` beside this module), run atomically by the
server and timed by the server's own clock (``TIME``), so replicas whose clocks drift still share one
bucket. Every governance call is a single round trip (``EVALSHA``, loaded on first use). The two calls
every governed request makes (``reserve`` and ``commit``) go through :class:`~podium.state.pipe.RedisPipe`,
a pipelined connection that costs a fraction of redis-py's per-call CPU; the rest uses redis-py.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from importlib.resources import files
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from podium.errors import StateStoreUnavailable
from podium.state.base import (
    BucketAdjust,
    BucketLevel,
    BucketState,
    BucketTake,
    BudgetSettle,
    BudgetState,
    Check,
    Committed,
    Op,
    Reservation,
    SlotAcquire,
    SlotRelease,
)
from podium.state.pipe import RedisPipe, forward


def _script(name: str) -> str:
    return files("podium.state").joinpath("scripts", name).read_text(encoding="utf-8")


def _num(value: float) -> str:
    return repr(float(value))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisStateStore:
    """A :class:`~podium.state.base.StateStore` in Redis.

    Args:
        client: A ``redis.asyncio.Redis`` client (its connection pool is shared by every call).
        prefix: Prepended to every key; use one per deployment (tests use one per test).
        owns_client: Close the client in :meth:`aclose`.
    """

    def __init__(self, client: Redis, prefix: str = "podium:", *, owns_client: bool = False) -> None:
        self.prefix = prefix
        self._redis = client
        self._owns = owns_client
        self._owner = uuid.uuid4().hex
        self._reserve: AsyncScript = client.register_script(_script("reserve.lua"))
        self._commit: AsyncScript = client.register_script(_script("commit.lua"))
        self._read: AsyncScript = client.register_script(_script("read.lua"))
        self._unlock: AsyncScript = client.register_script(_script("unlock.lua"))
        self._pipe = RedisPipe.for_client(client)
        self._unanswered: set[asyncio.Future[Committed]] = set()

    @classmethod
    def from_url(cls, url: str, prefix: str = "podium:") -> RedisStateStore:
        """Connect to ``redis://`` / ``rediss://`` / ``unix://`` ``url`` (connections open lazily)."""
        return cls(Redis.from_url(url), prefix, owns_client=True)

    def _k(self, key: str) -> str:
        return self.prefix + key

    async def reserve(self, checks: Sequence[Check]) -> Reservation:
        """Apply every check, or none of them, in one script run."""
        if not checks:
            return Reservation(ok=True)
        keys: list[str] = []
        args: list[str] = []
        for check in checks:
            keys.append(self._k(check.key))
            if isinstance(check, BucketTake):
                args += ["b", _num(check.capacity), _num(check.rate), _num(check.amount)]
            elif isinstance(check, SlotAcquire):
                args += ["s", check.member, str(check.limit), _num(check.ttl)]
            else:
                limit = "" if check.limit is None else str(check.limit)
                args += ["g", limit, str(check.amount), _num(check.ttl)]
        raw = await self._hot(self._reserve, keys, args)
        if int(raw[0]) == 0:
            return Reservation(
                ok=False,
                failed=int(raw[1]),
                retry_after=float(_text(raw[2])),
                spent=int(_text(raw[3])),
                reserved=int(_text(raw[4])),
            )
        levels = {
            int(raw[i]): BucketLevel(float(_text(raw[i + 1])), float(_text(raw[i + 2])))
            for i in range(1, len(raw), 3)
        }
        return Reservation(ok=True, levels=levels)

    async def commit(self, ops: Sequence[Op]) -> Committed:
        """Apply every op in one script run."""
        if not ops:
            return Committed()
        keys, args = self._commit_args(ops)
        return self._committed(await self._hot(self._commit, keys, args))

    def commit_soon(self, ops: Sequence[Op]) -> asyncio.Future[Committed] | None:
        """Write the commit to the pipe now; its reply resolves the returned future.

        The request path's reservations travel on the same connection, so they run after it in Redis;
        this store's reads (:meth:`buckets`, :meth:`slots`, :meth:`budgets`, :meth:`hashes`) and
        :meth:`aclose` first wait for the commits still unanswered. None without an open pipe.
        """
        if not ops or self._pipe is None:
            return None
        keys, args = self._commit_args(ops)
        try:
            sent = self._pipe.evalsha_now(self._commit.sha, self._commit.script, keys, args)
        except StateStoreUnavailable:
            return None  # commit() reconnects, or reports the outage
        if sent is None:
            return None
        out: asyncio.Future[Committed] = asyncio.get_running_loop().create_future()

        def replied(fut: asyncio.Future[Any]) -> None:
            self._unanswered.discard(out)
            forward(fut, out, self._committed)

        self._unanswered.add(out)
        sent.add_done_callback(replied)
        return out

    def _committed(self, reply: Any) -> Committed:
        raw = [_text(v) for v in reply]
        bar = raw.index("|")
        spent = {int(raw[i]): int(raw[i + 1]) for i in range(0, bar, 2)}
        flags = tuple(f.removeprefix(self.prefix) for f in raw[bar + 1 :])
        return Committed(spent=spent, flags=flags)

    async def _answered(self) -> None:
        """Wait for the commits sent by :meth:`commit_soon` that Redis has not answered yet."""
        if self._unanswered:
            await asyncio.wait(list(self._unanswered))

    def _commit_args(self, ops: Sequence[Op]) -> tuple[list[str], list[str]]:
        """``commit.lua``'s KEYS and ARGV for ``ops``."""
        keys: list[str] = []
        args: list[str] = []
        for op in ops:
            keys.append(self._k(op.key))
            if isinstance(op, BucketAdjust):
                args += ["a", _num(op.capacity), _num(op.rate), _num(op.amount)]
            elif isinstance(op, SlotRelease):
                args += ["x", op.member]
            elif isinstance(op, BudgetSettle):
                args += ["g", str(op.release), str(op.charge), _num(op.ttl), _num(op.flag_ttl)]
                args.append(str(len(op.thresholds)))
                for flag, level in op.thresholds:
                    keys.append(self._k(flag))
                    args.append(str(level))
            else:
                args += ["h", _num(op.ttl), str(len(op.fields))]
                for name, amount in op.fields:
                    args += [name, str(amount)]
        return keys, args

    async def _hot(self, script: AsyncScript, keys: list[str], args: list[str]) -> Any:
        """Run one of the request path's scripts: through the pipe, or redis-py when there is none."""
        if self._pipe is not None:
            return await self._pipe.evalsha(script.sha, script.script, keys, args)
        try:
            return await script(keys=keys, args=args)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            raise StateStoreUnavailable(f"Redis cannot be reached: {exc}") from exc

    async def buckets(self, keys: Sequence[tuple[str, float, float]]) -> list[BucketState]:
        """The current level of each ``(key, capacity, rate)`` bucket, by the server's clock."""
        if not keys:
            return []
        await self._answered()
        args = ["b"]
        for _, capacity, rate in keys:
            args += [_num(capacity), _num(rate)]
        raw = await self._read(keys=[self._k(k) for k, _, _ in keys], args=args)
        return [BucketState(float(_text(raw[i])), float(_text(raw[i + 1]))) for i in range(0, len(raw), 2)]

    async def slots(self, keys: Sequence[str]) -> list[int]:
        """Live concurrency slots per key."""
        if not keys:
            return []
        await self._answered()
        raw = await self._read(keys=[self._k(k) for k in keys], args=["s"])
        return [int(v) for v in raw]

    async def budgets(self, keys: Sequence[str]) -> list[BudgetState]:
        """Spend and reservations per budget period key."""
        await self._answered()
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hmget(self._k(key), "s", "r")
            rows = await pipe.execute()
        return [BudgetState(int(s or 0), int(r or 0)) for s, r in rows]

    async def hashes(self, keys: Sequence[str]) -> list[dict[str, int]]:
        """Every field of each integer hash."""
        await self._answered()
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hgetall(self._k(key))
            rows = await pipe.execute()
        return [{_text(f): int(v) for f, v in row.items()} for row in rows]

    async def get(self, key: str) -> bytes | None:
        """The bytes stored under ``key``, or None."""
        value = await self._redis.get(self._k(key))
        if value is None:
            return None
        return value.encode() if isinstance(value, str) else bytes(value)

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """Store bytes under ``key``."""
        px = None if ttl is None else max(1, round(ttl * 1000))
        await self._redis.set(self._k(key), value, px=px)

    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        """Add to the integer under ``key`` and return the result (one MULTI round trip)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incrby(self._k(key), amount)
            if ttl is not None:
                pipe.pexpire(self._k(key), max(1, round(ttl * 1000)))
            result = await pipe.execute()
        return int(result[0])

    async def try_lock(self, key: str, ttl: float) -> bool:
        """Take the lock unless someone holds it (``SET NX PX``); True when taken."""
        taken = await self._redis.set(self._k(key), self._owner, nx=True, px=max(1, round(ttl * 1000)))
        return bool(taken)

    async def unlock(self, key: str) -> None:
        """Release the lock if this store instance holds it (compare-and-delete script)."""
        await self._unlock(keys=[self._k(key)], args=[self._owner])

    async def delete(self, *keys: str) -> None:
        """Remove the keys."""
        if keys:
            await self._redis.delete(*(self._k(k) for k in keys))

    async def aclose(self) -> None:
        """Close the pipe, and the client when this store created it."""
        await self._answered()
        if self._pipe is not None:
            await self._pipe.aclose()
        if self._owns:
            await self._redis.aclose()
