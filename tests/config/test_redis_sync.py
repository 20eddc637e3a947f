"""Replicas sharing a configuration directory hear each other's writes over the real Redis."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from podium.config.crypto import Cipher
from podium.config.manager import ConfigManager
from podium.config.store import ConfigStore
from podium.config.watcher import RedisConfigSync
from podium.errors import ConfigError
from podium.events import ConfigEvent
from tests.config import record
from tests.services import REDIS_URL, require_redis

WAIT = 10.0


@pytest.fixture(autouse=True)
def _need_redis() -> None:
    require_redis()


class Replica:
    """One podium process: its own store, manager and Redis subscription, sharing the directory."""

    def __init__(self, directory: Path, key: bytes, channel: str) -> None:
        self.sync = RedisConfigSync(REDIS_URL, channel)
        self.manager = ConfigManager(ConfigStore(directory, Cipher(key)), sync=self.sync)
        self.events: list[ConfigEvent] = []
        self._arrived = asyncio.Event()
        for name in ("config.created", "config.updated", "config.removed"):
            self.manager.register_hook(name, self._record)

    def _record(self, event: ConfigEvent) -> None:
        self.events.append(event)
        self._arrived.set()

    def seen(self) -> list[tuple[str, str, str]]:
        return [(e.name, e.provider, e.source) for e in self.events]

    async def wait_for(self, count: int) -> None:
        while len(self.events) < count:
            self._arrived.clear()
            await asyncio.wait_for(self._arrived.wait(), WAIT)


@pytest.fixture
async def replicas(tmp_path: Path) -> AsyncIterator[tuple[Replica, Replica]]:
    key, channel = os.urandom(32), f"podium:test:{uuid.uuid4().hex}"
    a, b = Replica(tmp_path / "config", key, channel), Replica(tmp_path / "config", key, channel)
    for replica in (a, b):
        await replica.manager.load()
        # Polls an hour apart: only the Redis announcement can deliver a change within the test.
        await replica.manager.watch(interval=3600)
    yield a, b
    await a.manager.aclose()
    await b.manager.aclose()


async def test_a_write_on_one_replica_reaches_the_other(replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    await a.manager.save(record("gpt"))
    await b.wait_for(1)
    assert b.seen() == [("config.created", "gpt", "replica")]
    assert b.manager.store.get("acme", "gpt") == record("gpt")

    await b.manager.remove("acme", "gpt")
    await b.manager.save(record("claude"))
    await a.wait_for(3)
    # a never reports its own write a second time; b's two writes may reach it in one re-read.
    assert a.seen()[0] == ("config.created", "gpt", "api")
    assert sorted(a.seen()[1:]) == [
        ("config.created", "claude", "replica"),
        ("config.removed", "gpt", "replica"),
    ]
    assert b.seen() == [
        ("config.created", "gpt", "replica"),
        ("config.removed", "gpt", "api"),
        ("config.created", "claude", "api"),
    ]


async def test_announcements_carry_no_settings_and_junk_is_ignored(replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    client = Redis.from_url(REDIS_URL)
    pubsub = client.pubsub()
    try:
        await pubsub.subscribe(a.sync.channel)
        confirmation = await pubsub.get_message(timeout=WAIT)
        assert confirmation is not None and confirmation["type"] == "subscribe"
        await client.publish(a.sync.channel, b"not json")
        await a.manager.save(record("gpt"))
        await b.wait_for(1)
        messages: list[bytes] = []
        while len(messages) < 2:
            msg = await pubsub.get_message(timeout=WAIT)
            assert msg is not None
            messages.append(msg["data"])
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
        await client.aclose()
    announcement = messages[1].decode()
    assert "sk-" not in announcement
    assert "gpt-4o-mini" not in announcement
    assert '"op":"put"' in announcement
    assert b.seen() == [("config.created", "gpt", "replica")]


async def test_unreachable_redis_is_a_clear_error(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sync = RedisConfigSync(f"redis://:secret-password@127.0.0.1:{port}/0")

    async def ignore(change: object) -> None:
        return None

    with pytest.raises(ConfigError) as err:
        await sync.start(ignore)
    assert "cannot subscribe to Redis at redis://127.0.0.1" in err.value.message
    assert "secret-password" not in err.value.message
    # Announcing is best effort: the local write already succeeded, other replicas will poll.
    with caplog.at_level(logging.WARNING):
        await sync.publish("acme", "gpt", "put")
    assert "cannot announce the change of acme/gpt" in caplog.text
    assert "secret-password" not in caplog.text
    await sync.aclose()


async def test_a_dropped_subscription_recovers_and_catches_up(replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    admin = Redis.from_url(REDIS_URL)
    try:
        clients = await admin.client_list()
        subscribed = [
            c for c in clients if c["name"] == f"podium-config-{a.sync.origin_id}" and c["sub"] != "0"
        ]
        assert len(subscribed) == 1
        await admin.client_kill_filter(_id=subscribed[0]["id"])
    finally:
        await admin.aclose()
    # Written while a may be disconnected: the announcement can be lost, the re-subscription resyncs.
    await b.manager.save(record("gpt"))
    await a.wait_for(1)
    assert a.seen() == [("config.created", "gpt", "replica")]
