"""The request path's pipelined Redis connection: replies matched to callers, and every failure typed."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis

from podium import StateStoreUnavailable
from podium.state import BucketTake, HashIncr, RedisStateStore, SlotAcquire, SlotRelease
from podium.state.pipe import CLIENT_NAME
from tests.state.stores import REDIS_URL, real_redis_store, require_redis, unique_prefix


@contextlib.contextmanager
def socket_closed() -> Iterator[int]:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    yield port


@pytest.fixture
async def redis_store() -> AsyncIterator[RedisStateStore]:
    async with real_redis_store() as store:
        yield store


async def test_concurrent_callers_each_get_their_own_reply(redis_store: RedisStateStore) -> None:
    # Buckets of different sizes: a reply handed to the wrong caller shows up as the wrong level.
    takes = [BucketTake(f"b{i}", capacity=1000 + i, rate=0.0001, amount=1) for i in range(300)]
    results = await asyncio.gather(*(redis_store.reserve([t]) for t in takes))
    assert [round(r.levels[0].remaining) for r in results] == [999 + i for i in range(300)]


async def test_a_flushed_script_cache_is_reloaded(redis_store: RedisStateStore) -> None:
    client = Redis.from_url(REDIS_URL)
    try:
        await redis_store.reserve([BucketTake("x", capacity=5, rate=0.0001, amount=1)])
        await client.script_flush()  # what a restarted Redis looks like to podium
        result = await redis_store.reserve([BucketTake("x", capacity=5, rate=0.0001, amount=1)])
        assert result.ok and round(result.levels[0].remaining) == 3
        await redis_store.commit([HashIncr("ledger", (("n", 2),), ttl=60)])
        assert await redis_store.hashes(["ledger"]) == [{"n": 2}]
    finally:
        await client.aclose()


async def test_a_killed_connection_is_replaced_on_the_next_call(redis_store: RedisStateStore) -> None:
    take = BucketTake("k", capacity=10, rate=0.0001, amount=1)
    await redis_store.reserve([take])
    client = Redis.from_url(REDIS_URL)
    try:
        killed = 0
        for entry in await client.client_list():
            if entry["name"] == CLIENT_NAME:
                killed += await client.client_kill_filter(_id=entry["id"])
        assert killed >= 1
    finally:
        await client.aclose()
    result = None
    for _ in range(2):
        try:
            result = await redis_store.reserve([take])
            break
        except StateStoreUnavailable:
            # Sent before the pipe read the close: it never reached Redis, and is not retried.
            continue
    assert result is not None and result.ok
    assert round(result.levels[0].remaining) == 8  # the new connection works; nothing taken twice


async def test_an_unreachable_redis_is_a_typed_503() -> None:
    with socket_closed() as port:
        store = RedisStateStore.from_url(f"redis://127.0.0.1:{port}/0", unique_prefix())
        try:
            with pytest.raises(StateStoreUnavailable, match="cannot connect to Redis") as caught:
                await store.reserve([BucketTake("x", capacity=5, rate=1, amount=1)])
            assert caught.value.status == 503
            assert caught.value.to_dict()["error"]["code"] == "state_store_unavailable"
        finally:
            await store.aclose()


async def test_a_connection_lost_mid_call_fails_the_call_instead_of_hanging() -> None:
    # A server that takes the command and hangs up without answering.
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    store = RedisStateStore.from_url(f"redis://127.0.0.1:{port}/0", unique_prefix())
    try:
        async with asyncio.timeout(5):
            with pytest.raises(StateStoreUnavailable, match="was lost"):
                await store.reserve([BucketTake("x", capacity=5, rate=1, amount=1)])
    finally:
        await store.aclose()
        server.close()
        await server.wait_closed()


async def test_credentials_and_database_of_the_url_are_used() -> None:
    require_redis()
    user, password = f"podium-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    admin = Redis.from_url(REDIS_URL)
    await admin.execute_command("ACL", "SETUSER", user, "on", f">{password}", "~*", "&*", "+@all")
    prefix = unique_prefix()
    store = RedisStateStore.from_url(f"redis://{user}:{password}@127.0.0.1:6379/7", prefix)
    wrong = RedisStateStore.from_url(f"redis://{user}:not-{password}@127.0.0.1:6379/7", prefix)
    db7 = Redis.from_url("redis://127.0.0.1:6379/7")
    try:
        assert (await store.reserve([BucketTake("in7", capacity=5, rate=0.0001, amount=1)])).ok
        assert await db7.exists(prefix + "in7") == 1  # SELECT 7 took effect
        assert await admin.exists(prefix + "in7") == 0
        with pytest.raises(StateStoreUnavailable, match="refused the connection"):
            await wrong.reserve([BucketTake("in7", capacity=5, rate=0.0001, amount=1)])
    finally:
        await store.aclose()
        await wrong.aclose()
        await db7.delete(prefix + "in7")
        await db7.aclose()
        await admin.execute_command("ACL", "DELUSER", user)
        await admin.aclose()


def test_the_pipe_works_on_uvloop_as_the_server_runs_it() -> None:
    # uvloop's transports differ from asyncio's (connection_made may come after create_connection).
    require_redis()
    import uvloop

    async def scenario() -> list[float]:
        async with real_redis_store() as store:
            takes = [BucketTake(f"u{i}", capacity=100 + i, rate=0.0001, amount=1) for i in range(50)]
            results = await asyncio.gather(*(store.reserve([t]) for t in takes))
            return [r.levels[0].remaining for r in results]

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        levels = runner.run(scenario())
    assert [round(v) for v in levels] == [99 + i for i in range(50)]


async def test_a_commit_sent_without_waiting_is_seen_by_every_later_call(
    redis_store: RedisStateStore,
) -> None:
    """``commit_soon`` returns before Redis answers, yet nothing later from this process overtakes it."""
    slot = SlotAcquire("slots", member="request-1", limit=1, ttl=60)
    assert (await redis_store.reserve([slot])).ok
    ledger = HashIncr("ledger", (("n", 1),), ttl=60)
    # Connected: the commit is written at once, and its reply has not been read yet.
    soon = redis_store.commit_soon([SlotRelease("slots", member="request-1"), ledger])
    assert soon is not None and not soon.done()
    # The freed slot is there for the next reservation, sent right after on the same connection ...
    second = await redis_store.reserve([SlotAcquire("slots", member="request-2", limit=1, ttl=60)])
    assert second.ok
    # ... and reads through redis-py (another connection) wait for the unanswered commit.
    assert await redis_store.hashes(["ledger"]) == [{"n": 1}]
    assert (await soon).flags == ()


async def test_a_commit_with_no_open_connection_is_left_to_commit(redis_store: RedisStateStore) -> None:
    # A new store has no connection yet: the caller commits and waits, as before.
    assert redis_store.commit_soon([HashIncr("ledger", (("n", 1),), ttl=60)]) is None
    await redis_store.commit([HashIncr("ledger", (("n", 1),), ttl=60)])
    assert redis_store.commit_soon([]) is None


async def test_a_commit_sent_without_waiting_survives_a_flushed_script_cache(
    redis_store: RedisStateStore,
) -> None:
    client = Redis.from_url(REDIS_URL)
    try:
        await redis_store.reserve([BucketTake("x", capacity=5, rate=0.0001, amount=1)])
        await client.script_flush()
        soon = redis_store.commit_soon([HashIncr("ledger", (("n", 3),), ttl=60)])
        assert soon is not None
        await asyncio.wait_for(soon, 10)
        assert await redis_store.hashes(["ledger"]) == [{"n": 3}]
    finally:
        await client.aclose()
