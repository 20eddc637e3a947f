from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner, Result

from podium.cli.audit import app
from podium.storage import AuditRecord, Database, audit, migrate
from tests.storage import database_url


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with database_url(request.param, tmp_path) as url:
        yield url


async def _invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    # The command runs its own event loop, so it runs in a thread beside the test's loop.
    return await asyncio.to_thread(CliRunner().invoke, app, list(args), env=env)


async def _with_events(url: str, count: int) -> None:
    await migrate(url)
    async with Database(url) as db:
        await audit.write(
            db, [AuditRecord(actor="admin", action="config.updated", details={"n": n}) for n in range(count)]
        )


async def test_verify_reports_an_intact_chain_and_exits_0(db_url: str) -> None:
    await _with_events(db_url, 3)
    result = await _invoke("verify", "--database-url", db_url)
    assert result.exit_code == 0, result.output
    assert "audit chain OK: 3 events verified" in result.output


async def test_verify_reports_the_first_broken_link_and_exits_1(db_url: str) -> None:
    await _with_events(db_url, 4)
    async with Database(db_url) as db, db.transaction() as conn:
        await conn.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2"))
    result = await _invoke("verify", "--database-url", db_url)
    assert result.exit_code == 1, result.output
    assert "audit chain BROKEN at event 2" in result.output
    assert "the event before it is intact" in result.output


async def test_verify_reads_database_url_from_the_environment(db_url: str) -> None:
    await _with_events(db_url, 2)
    result = await _invoke("verify", env={"DATABASE_URL": db_url})
    assert result.exit_code == 0, result.output
    assert "2 events verified" in result.output


async def test_verify_on_a_database_without_podium_tables_exits_2(db_url: str) -> None:
    async with Database(db_url) as db, db.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))  # the database exists (the SQLite file is created), but is empty
    result = await _invoke("verify", "--database-url", db_url)
    assert result.exit_code == 2, result.output
    assert "no podium schema" in result.output


async def test_verify_on_a_missing_sqlite_file_exits_2_and_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "podium.db"
    result = await _invoke("verify", "--database-url", f"sqlite:///{path}")
    assert result.exit_code == 2, result.output
    assert "there is no database file" in result.output
    assert not path.parent.exists()


async def test_verify_on_an_unreachable_database_exits_2_without_showing_the_password() -> None:
    result = await _invoke("verify", "--database-url", "postgresql://app:hunter2-pw@127.0.0.1:1/podium")
    assert result.exit_code == 2, result.output
    assert "cannot read" in result.output and "hunter2-pw" not in result.output
