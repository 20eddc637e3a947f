"""Picking up configuration changes without a restart: file polling and a Redis channel between replicas.

``ConfigWatcher`` polls the configuration directory (stat signature, then content digest) and hands
the differences to a callback as ``ConfigCreated``/``ConfigUpdated``/``ConfigRemoved`` events with
``source="file"``. Replicas that share the directory can also announce their writes on a Redis channel
(``RedisConfigSync``): a replica hearing another's announcement re-reads the directory at once instead
of at its next poll, and reports what it finds with ``source="replica"``. Announcements carry names
only, never settings or secrets.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

import msgspec

from podium.config.store import ConfigStore
from podium.errors import ConfigError
from podium.events import ConfigEvent, ConfigSource

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub

logger = logging.getLogger(__name__)

ChangeHandler = Callable[[list[ConfigEvent]], Awaitable[None] | None]


class ConfigWatcher:
    """Polls the configuration directory and reports changes made behind podium's back.

    The store's own writes are never reported (it recognises them by digest), so a change made
    through podium's API produces exactly one event: the one the API path publishes.

    Args:
        store: The store whose directory is watched; load it (``load_all``) before starting, since
            changes are reported relative to what the store last saw.
        interval: Seconds between polls.
        on_change: Called (sync or async) with each non-empty batch of events.
        sync: Optional Redis channel; announcements from other replicas trigger an immediate poll.
    """

    def __init__(
        self,
        store: ConfigStore,
        interval: float,
        on_change: ChangeHandler,
        *,
        sync: RedisConfigSync | None = None,
    ) -> None:
        if interval <= 0:
            raise ConfigError(f"the config watch interval must be positive, got {interval}")
        self.store = store
        self.interval = interval
        self.sync = sync
        self._on_change = on_change
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start polling (and listening to the Redis channel, when there is one)."""
        if self._task is not None:
            return
        if self.sync is not None:
            await self.sync.start(self._on_remote)
        self._task = asyncio.create_task(self._run(), name="podium-config-watcher")

    async def check(self, source: ConfigSource = "file") -> list[ConfigEvent]:
        """Poll now; report and return the changes found.

        Never raises for a bad file or a failing callback: both are logged.
        """
        async with self._lock:
            try:
                events = await asyncio.to_thread(self.store.poll, source)
            except OSError as exc:
                logger.error("cannot read the configuration directory %s: %s", self.store.directory, exc)
                return []
            if events:
                try:
                    result = self._on_change(events)
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    logger.exception("configuration change handler failed")
            return events

    async def aclose(self) -> None:
        """Stop polling and listening."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.sync is not None:
            await self.sync.aclose()

    async def __aenter__(self) -> ConfigWatcher:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.check("file")

    async def _on_remote(self, change: RemoteChange) -> None:
        logger.debug(
            "replica %s announced %s of %s/%s", change.origin_id, change.op, change.tenant, change.name
        )
        await self.check("replica")


class RemoteChange(msgspec.Struct, frozen=True, kw_only=True):
    """An announcement on the Redis channel: which provider another replica changed.

    ``op`` is ``"resync"`` (with empty names) after the channel reconnected, since announcements may
    have been missed meanwhile.
    """

    tenant: str
    name: str
    op: Literal["put", "delete", "resync"]
    origin_id: str


_decoder = msgspec.json.Decoder(RemoteChange)
_PUBLISH_TIMEOUT = 2.0


def _redact(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"


class RedisConfigSync:
    """Announces this replica's configuration writes on a Redis channel and hears the others'.

    Args:
        redis_url: ``redis://`` URL (``REDIS_URL``).
        channel: Pub/sub channel shared by the replicas.
        origin_id: This replica's id; random by default. Announcements carrying it are ignored.
    """

    def __init__(
        self, redis_url: str, channel: str = "podium:config", *, origin_id: str | None = None
    ) -> None:
        self.redis_url = redis_url
        self.channel = channel
        self.origin_id = origin_id or uuid.uuid4().hex
        self._client: Redis | None = None
        self._pubsub: PubSub | None = None
        self._task: asyncio.Task[None] | None = None

    def _connect(self) -> Redis:
        if self._client is None:
            from redis.asyncio import Redis

            # Named, so operators can tell podium's connections apart in CLIENT LIST.
            self._client = Redis.from_url(self.redis_url, client_name=f"podium-config-{self.origin_id}")
        return self._client

    async def start(self, on_remote: Callable[[RemoteChange], Awaitable[None]]) -> None:
        """Subscribe, and call ``on_remote`` for each announcement from another replica.

        Returns once the subscription is active, so announcements made afterwards are heard.

        Raises:
            ConfigError: Redis cannot be reached.
        """
        from redis.exceptions import RedisError

        pubsub = self._connect().pubsub()
        try:
            await pubsub.subscribe(self.channel)
            msg = await pubsub.get_message(timeout=10.0)
            while msg is not None and msg["type"] != "subscribe":
                msg = await pubsub.get_message(timeout=10.0)
        except (RedisError, OSError) as exc:
            await _close(pubsub)
            raise ConfigError(f"cannot subscribe to Redis at {_redact(self.redis_url)}: {exc}") from exc
        if msg is None:
            await _close(pubsub)
            raise ConfigError(f"Redis at {_redact(self.redis_url)} did not confirm the subscription")
        self._pubsub = pubsub
        self._task = asyncio.create_task(self._listen(pubsub, on_remote), name="podium-config-sync")

    async def publish(self, tenant: str, name: str, op: Literal["put", "delete"]) -> None:
        """Announce a local write. A Redis failure is logged, not raised: the write itself succeeded."""
        from redis.exceptions import RedisError

        payload = msgspec.json.encode(RemoteChange(tenant=tenant, name=name, op=op, origin_id=self.origin_id))
        try:
            # Bounded: an unreachable Redis must not hold up the API call that made the change.
            async with asyncio.timeout(_PUBLISH_TIMEOUT):
                await self._connect().publish(self.channel, payload)
        except (RedisError, OSError, TimeoutError) as exc:
            logger.warning(
                "cannot announce the change of %s/%s on Redis (other replicas see it at their next poll): %s",
                tenant,
                name,
                exc,
            )

    async def aclose(self) -> None:
        """Unsubscribe and close the connections."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            await _close(pubsub)
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def _listen(self, pubsub: PubSub, on_remote: Callable[[RemoteChange], Awaitable[None]]) -> None:
        from redis.exceptions import RedisError

        delay = 0.5
        while True:
            try:
                msg = await pubsub.get_message(timeout=5.0)
            except (RedisError, OSError) as exc:
                logger.warning("Redis config channel lost (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            if msg is None:
                continue
            delay = 0.5
            if msg["type"] == "subscribe":
                # The client re-subscribed after a reconnection: announcements may have been missed.
                change = RemoteChange(tenant="", name="", op="resync", origin_id="")
            elif msg["type"] == "message":
                try:
                    change = _decoder.decode(msg["data"])
                except msgspec.DecodeError:
                    logger.warning("ignoring a malformed announcement on Redis channel %s", self.channel)
                    continue
                if change.origin_id == self.origin_id:
                    continue
            else:
                continue
            try:
                await on_remote(change)
            except Exception:
                logger.exception("handling a Redis configuration announcement failed")


__all__ = ["ChangeHandler", "ConfigWatcher", "RedisConfigSync", "RemoteChange"]


async def _close(pubsub: PubSub) -> None:
    """Close a pub/sub connection.

    Called through a typed name: redis-py before 8.2 leaves ``PubSub.aclose`` unannotated (an untyped
    call under mypy --strict) and 8.2 annotates it, so a ``type: ignore`` fits only one of them.
    """
    close: Callable[[], Awaitable[None]] = pubsub.aclose
    await close()
