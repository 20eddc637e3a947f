"""podium's asyncio face on SQLAlchemy Core, on the real SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import InvalidRequestError

from podium.storage import Database


async def _count(db: Database) -> int:
    async with db.engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM t"))).scalar_one())


@pytest.fixture
async def table_db(db_url: str) -> AsyncIterator[Database]:
    db = Database(db_url)
    try:
        async with db.transaction() as conn:
            await conn.execute(text("CREATE TABLE t (x INTEGER)"))
        yield db
    finally:
        await db.dispose()


async def test_statements_run_with_single_and_many_parameters(table_db: Database) -> None:
    async with table_db.transaction() as conn:
        await conn.execute(text("INSERT INTO t VALUES (:x)"), {"x": 1})
        await conn.execute(text("INSERT INTO t VALUES (:x)"), [{"x": 2}, {"x": 3}])
        updated = await conn.execute(text("UPDATE t SET x = x * 10 WHERE x > 1"))
        assert updated.rowcount == 2
    async with table_db.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT x FROM t ORDER BY x"))).scalars().all()
    assert rows == [1, 20, 30]


async def test_a_block_that_raises_rolls_back_and_one_that_ends_commits(table_db: Database) -> None:
    async def insert_then_fail() -> None:
        async with table_db.transaction() as conn:
            await conn.execute(text("INSERT INTO t VALUES (1)"))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await insert_then_fail()
    assert await _count(table_db) == 0
    async with table_db.transaction() as conn:
        await conn.execute(text("INSERT INTO t VALUES (1)"))
    assert await _count(table_db) == 1


async def test_work_after_a_commit_inside_the_block_is_refused_not_silently_lost(table_db: Database) -> None:
    """A second transaction started inside the block would be rolled back when the block ends."""

    async def commit_then_insert() -> None:
        async with table_db.transaction() as conn:
            await conn.execute(text("INSERT INTO t VALUES (1)"))
            await conn.commit()
            await conn.execute(text("INSERT INTO t VALUES (2)"))

    with pytest.raises(InvalidRequestError, match="closed transaction"):
        await commit_then_insert()
    async with table_db.engine.connect() as conn:
        assert (await conn.execute(text("SELECT x FROM t"))).scalars().all() == [1]


async def test_server_side_cursors_are_refused(table_db: Database) -> None:
    async with table_db.transaction() as conn:
        await conn.execute(text("INSERT INTO t VALUES (1)"))
    async with table_db.engine.connect() as conn:
        with pytest.raises(InvalidRequestError, match="stream_results"):
            await conn.execute(text("SELECT x FROM t"), execution_options={"stream_results": True})
        # The connection is still usable afterwards.
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 1
    assert table_db.engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_run_sync_hands_synchronous_code_a_connection(table_db: Database) -> None:
    def insert(sync: Connection, value: int, *, times: int) -> str:
        for _ in range(times):
            sync.execute(text("INSERT INTO t VALUES (:x)"), {"x": value})
        return sync.dialect.name

    async with table_db.transaction() as conn:
        name = await conn.run_sync(insert, 7, times=3)
    assert name == table_db.dialect
    assert await _count(table_db) == 3


@pytest.mark.parametrize("steps_before_repeating", range(8))
async def test_a_cancelled_task_still_returns_its_connection_to_the_pool(
    table_db: Database, steps_before_repeating: int
) -> None:
    """A client that disconnects cancels its request's task mid-query; the pool must not leak.

    The cancellation is repeated (a shutdown cancelling what a disconnect already cancelled) from
    a varying point on, so that it also lands while the rollback and the return to the pool run.
    """
    pool = table_db.engine.sync_engine.pool
    holding = asyncio.Event()

    async def hold() -> None:
        async with table_db.transaction() as conn:
            await conn.execute(text("INSERT INTO t VALUES (1)"))
            holding.set()
            await asyncio.sleep(30)

    async def cancel_until_done(task: asyncio.Task[None]) -> None:
        task.cancel()
        for _ in range(steps_before_repeating):
            await asyncio.sleep(0)
        while not task.done():
            task.cancel()
            await asyncio.sleep(0)

    task = asyncio.create_task(hold())
    await asyncio.wait_for(holding.wait(), 10)
    assert pool.checkedout() == 1  # type: ignore[attr-defined]
    await asyncio.wait_for(cancel_until_done(task), 10)
    with pytest.raises(asyncio.CancelledError):
        await task
    assert pool.checkedout() == 0  # type: ignore[attr-defined]
    assert await _count(table_db) == 0  # the open transaction was rolled back, not committed


def test_the_gateway_never_imports_the_orm_or_the_other_commands() -> None:
    """``podium serve`` pays in memory for every module it imports (the ORM alone is 6 MiB)."""
    script = textwrap.dedent(
        """
        import asyncio, sys, tempfile
        import typer
        from sqlalchemy import text
        from podium.cli.main import app
        from podium.storage import Database, migrate

        group = typer.main.get_command(app)
        assert group.get_command(typer.Context(group), "serve") is not None

        async def main():
            url = f"sqlite:///{tempfile.mkdtemp()}/p.db"
            await migrate(url)
            db = Database(url)
            async with db.transaction() as conn:
                await conn.execute(text("SELECT 1"))
            await db.dispose()

        asyncio.run(main())
        unwanted = ("sqlalchemy.orm", "sqlalchemy.ext.asyncio", "rich", "podium.cli.demo", "podium.cli.bench")
        print(sorted(name for name in sys.modules if name.startswith(unwanted)))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
