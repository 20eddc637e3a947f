from __future__ import annotations

import asyncio
import math
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from podium.errors import ConfigError
from podium.storage import (
    ConversationMessageRecord,
    Conversations,
    Database,
    RecordWriter,
    RequestLog,
    RequestRecord,
)
from tests.storage import TcpProxy


def _req(n: int, **kw: Any) -> RequestRecord:
    return RequestRecord(tenant="acme", request_id=f"r{n}", provider="gpt", model="m", cost=0.001, **kw)


async def _count(db: Database, table: str = "request_log") -> int:
    async with db.engine.connect() as conn:
        return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


async def _ids(db: Database) -> list[str]:
    async with db.engine.connect() as conn:
        return list((await conn.execute(text("SELECT request_id FROM request_log ORDER BY id"))).scalars())


async def _eventually(check: Callable[[], Awaitable[bool] | bool], what: str, limit: float = 60.0) -> None:
    """Wait (bounded) for a condition that a background task makes true."""
    for _ in range(int(limit / 0.02)):
        result = check()
        if await result if isinstance(result, Awaitable) else result:
            return
        await asyncio.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


def _request_log_inserts(db: Database, delay: float = 0.0) -> list[int]:
    """The rows of each INSERT into the request log from now on, each delayed ``delay`` s (a slow disk)."""
    inserts: list[int] = []

    def count_inserts(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool
    ) -> None:
        if statement.startswith("INSERT INTO request_log"):
            inserts.append(len(params) if executemany else 1)
            time.sleep(delay)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count_inserts)
    return inserts


async def test_every_submitted_record_is_stored_in_batches(db: Database) -> None:
    inserts = _request_log_inserts(db)
    writer = RecordWriter(db, batch_size=100, flush_interval=60)
    accepted = [writer.submit(_req(n)) for n in range(1050)]
    assert all(accepted)
    assert await writer.flush(timeout=60)
    stats = await writer.aclose()

    assert await _ids(db) == [f"r{n}" for n in range(1050)]
    assert (stats.written, stats.queued, stats.dropped, stats.rejected) == (1050, 0, 0, 0)
    assert sum(inserts) == 1050
    assert max(inserts) == 100 and len(inserts) == math.ceil(1050 / 100)


async def test_after_a_full_batch_a_steady_trickle_waits_for_the_interval(db: Database) -> None:
    # Under steady load the queue is never empty: after a full batch, records arriving one by one must
    # still be written in one transaction per interval, not in a stream of small ones.
    inserts = _request_log_inserts(db, delay=0.02)  # records keep arriving while a batch is written
    writer = RecordWriter(db, batch_size=50, flush_interval=3600)
    for n in range(50):  # a full batch wakes the writer at once
        writer.submit(_req(n))
    await _eventually(lambda: inserts == [50], "the full batch")
    for n in range(50, 90):  # then a trickle, each record while the writer could write
        writer.submit(_req(n))
        await asyncio.sleep(0.005)
    assert inserts == [50]
    await writer.aclose()
    assert inserts == [50, 40] and await _count(db) == 90


async def test_aclose_drains_whatever_is_queued(db: Database) -> None:
    writer = RecordWriter(db, batch_size=5000, flush_interval=3600)  # never flushes by itself in this test
    for n in range(321):
        writer.submit(_req(n))
    assert writer.stats().queued == 321
    stats = await writer.aclose()
    assert stats.written == 321 and stats.queued == 0
    assert await _count(db) == 321

    assert writer.submit(_req(999)) is False  # closed: refused and counted
    assert writer.stats().dropped == 1
    assert await _count(db) == 321


async def test_full_queue_drops_the_oldest_and_counts_them(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    writer = RecordWriter(db, max_queue=10, batch_size=5, flush_interval=3600)
    results = [writer.submit(_req(n)) for n in range(25)]  # no await: the writer cannot run meanwhile
    assert results == [True] * 10 + [False] * 15
    assert writer.stats().dropped == 15 and writer.stats().queued == 10
    stats = await writer.aclose()
    assert await _ids(db) == [f"r{n}" for n in range(15, 25)]
    assert (stats.written, stats.dropped) == (10, 15)
    assert "15 records dropped because the queue was full" in caplog.text


async def test_past_the_high_water_mark_callers_wait_for_the_writer_instead_of_losing_records(
    db: Database,
) -> None:
    writer = RecordWriter(db, max_queue=20, batch_size=5, flush_interval=3600)
    for n in range(9):
        writer.submit(_req(n))
    assert not writer.behind()  # under half the queue: a burst is absorbed without waiting
    writer.submit(_req(9))
    assert writer.behind()
    await asyncio.wait_for(writer.room(), timeout=30)  # returns once the writer has caught up
    assert not writer.behind()
    assert writer.stats().written >= 5 and writer.stats().dropped == 0
    await writer.aclose()
    assert await _ids(db) == [f"r{n}" for n in range(10)]


async def test_callers_that_wait_for_room_lose_nothing_however_fast_they_submit(db: Database) -> None:
    writer = RecordWriter(db, max_queue=20, batch_size=5, flush_interval=3600)

    async def request(n: int) -> None:
        if writer.behind():
            await writer.room()
        writer.submit(_req(n))

    await asyncio.gather(*(request(n) for n in range(300)))
    stats = await writer.aclose()
    assert (stats.written, stats.dropped) == (300, 0)
    assert sorted(await _ids(db), key=lambda i: int(i[1:])) == [f"r{n}" for n in range(300)]


async def test_nobody_waits_while_the_database_is_down(db: Database, db_url: str, tmp_path: Path) -> None:
    async with _outage(db_url, tmp_path) as (down_db, recover):
        writer = RecordWriter(down_db, max_queue=20, batch_size=5, flush_interval=0.01, max_backoff=0.2)
        for n in range(15):
            writer.submit(_req(n))
        await _eventually(lambda: writer.stats().failed_flushes >= 1, "a failed flush")
        assert not writer.behind()  # the gateway keeps serving; records queue, then the oldest drop
        await asyncio.wait_for(writer.room(), timeout=1)
        await recover()
        assert await writer.flush(timeout=60)
        await writer.aclose()


@asynccontextmanager
async def _outage(
    db_url: str, tmp_path: Path
) -> AsyncIterator[tuple[Database, Callable[[], Awaitable[None]]]]:
    """A database for the writer, and a function that ends the outage it starts in."""
    db = Database(db_url)
    if db.is_sqlite:
        # Another process holding SQLite's write lock: every write fails after the busy timeout.
        await db.dispose()
        db = Database(db_url, busy_timeout=0.05)
        blocker = sqlite3.connect(str(db.url.database), isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")

        async def recover() -> None:
            blocker.execute("COMMIT")

        try:
            yield db, recover
        finally:
            blocker.close()
            await db.dispose()
        return
    # PostgreSQL behind a proxy that is down: connections are refused until it comes back.
    proxy = TcpProxy(db.url.host or "127.0.0.1", db.url.port or 5432)
    await db.dispose()
    await proxy.start()
    await proxy.stop()
    db = Database(db.url.set(host="127.0.0.1", port=proxy.port), connect_timeout=2)

    try:
        yield db, proxy.start
    finally:
        await db.dispose()
        await proxy.stop()


async def test_records_wait_while_the_database_is_down_and_are_written_when_it_is_back(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    async with _outage(db_url, tmp_path) as (down_db, recover):
        writer = RecordWriter(down_db, batch_size=50, flush_interval=0.01, max_backoff=0.2)
        for n in range(120):
            writer.submit(_req(n))
        await _eventually(
            lambda: writer.stats().failed_flushes >= 3, "failed flushes while the database is down"
        )
        stats = writer.stats()
        assert stats.queued == 120 and stats.written == 0 and stats.dropped == 0
        assert stats.last_error is not None
        assert await _count(db) == 0

        await recover()
        assert await writer.flush(timeout=60)
        final = await writer.aclose()
    assert await _ids(db) == [f"r{n}" for n in range(120)]  # each once, in order
    assert (final.written, final.queued, final.dropped) == (120, 0, 0)


async def test_shutdown_with_the_database_down_reports_what_is_lost(
    db: Database, db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with _outage(db_url, tmp_path) as (down_db, _recover):
        writer = RecordWriter(down_db, flush_interval=0.01, max_backoff=0.05)
        for n in range(7):
            writer.submit(_req(n))
        stats = await writer.aclose(timeout=0.5)
    assert (stats.written, stats.queued, stats.dropped) == (0, 0, 7)
    assert "7 records lost at shutdown" in caplog.text


async def test_records_the_database_refuses_are_rejected_and_the_rest_written(db: Database) -> None:
    convs = Conversations(db)
    theirs = await convs.create(tenant="globex", user_id="eve")
    async with RecordWriter(db, batch_size=100, flush_interval=0.01) as writer:
        writer.submit(_req(1))
        writer.submit(_req(2, metadata={"score": float("nan")}))  # not JSON: can never be written
        writer.submit(_req(3))
        writer.submit(
            ConversationMessageRecord(
                conversation_id=theirs.id, tenant="acme", user_id="mallory", role="user", content="let me in"
            )
        )
        writer.submit(
            ConversationMessageRecord(
                conversation_id="new-conv", tenant="acme", user_id="alice", role="user", content="hello"
            )
        )
        assert await writer.flush(timeout=60)
        stats = writer.stats()
    assert await _ids(db) == ["r1", "r3"]
    assert (stats.written, stats.rejected, stats.queued) == (3, 2, 0)
    assert stats.last_error == "ValueError: Out of range float values are not JSON compliant"
    assert (await convs.get(theirs.id, tenant="globex", user_id="eve")).messages == []
    created = await convs.get("new-conv", tenant="acme", user_id="alice")
    assert [m.content for m in created.messages] == ["hello"]


async def test_conversation_messages_through_the_writer_keep_their_order(db: Database) -> None:
    async with RecordWriter(db, batch_size=7, flush_interval=0.01) as writer:
        for n in range(30):
            writer.submit(
                ConversationMessageRecord(
                    conversation_id="c1",
                    tenant="acme",
                    user_id="alice",
                    role="user" if n % 2 == 0 else "assistant",
                    content=str(n),
                )
            )
    conv = await Conversations(db).get("c1", tenant="acme", user_id="alice")
    assert [m.content for m in conv.messages] == [str(n) for n in range(30)]


async def test_request_log_queries_see_writer_records(db: Database) -> None:
    async with RecordWriter(db) as writer:
        for n in range(3):
            writer.submit(_req(n, prompt_tokens=10, completion_tokens=1))
    rows = await RequestLog(db).usage_by_day(tenant="acme")
    assert [(r.requests, r.total_tokens) for r in rows] == [(3, 33)]


@pytest.mark.parametrize(
    "kwargs",
    [{"max_queue": 0}, {"batch_size": 0}, {"flush_interval": 0}, {"max_queue": 10, "batch_size": 11}],
)
async def test_invalid_sizes_are_config_errors(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    async with Database(f"sqlite:///{tmp_path / 'x.db'}") as db:
        with pytest.raises(ConfigError):
            RecordWriter(db, **kwargs)
