from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from podium.errors import ConfigError
from podium.storage import Database, normalize_url


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///data/podium.db", "sqlite+aiosqlite:///data/podium.db"),
        ("sqlite:////abs/podium.db", "sqlite+aiosqlite:////abs/podium.db"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("postgresql://u:pw@h:5433/db", "postgresql+asyncpg://u:pw@h:5433/db"),
        ("postgres://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql://u@h/db?sslmode=require", "postgresql+asyncpg://u@h/db?ssl=require"),
    ],
)
def test_urls_are_normalised_to_async_drivers(given: str, expected: str) -> None:
    assert normalize_url(given).render_as_string(hide_password=False) == expected


@pytest.mark.parametrize("url", ["mysql://u@h/db", "not a url", "redis://localhost"])
def test_unsupported_or_invalid_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError, match="database URL"):
        normalize_url(url)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("sqlite+pysqlite:///podium.db", "'pysqlite' database driver is not an asyncio driver"),
        ("postgresql+pg8000://app:hunter2@h/db", "pg8000"),  # a blocking driver, and not installed
        ("postgresql+nosuchdriver://app:hunter2@h/db", "nosuchdriver"),
    ],
)
def test_a_blocking_or_unknown_driver_is_a_config_error(url: str, says: str) -> None:
    """A blocking driver would stall the gateway's event loop on every query: refused at once."""
    with pytest.raises(ConfigError, match=says) as caught:
        Database(url)
    assert "hunter2" not in str(caught.value)


async def test_password_is_hidden_in_display_url() -> None:
    db = Database("postgresql://app:hunter2-secret@127.0.0.1/podium")
    try:
        assert "hunter2-secret" not in db.display_url
        assert "hunter2-secret" not in repr(db)
    finally:
        await db.dispose()


async def test_sqlite_creates_parent_dirs_and_uses_wal_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "deeper" / "podium.db"
    async with Database(f"sqlite:///{path}", busy_timeout=2.5) as db:
        async with db.transaction() as conn:
            await conn.execute(text("CREATE TABLE t (x INTEGER)"))
            mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar_one()
            timeout = (await conn.execute(text("PRAGMA busy_timeout"))).scalar_one()
            fks = (await conn.execute(text("PRAGMA foreign_keys"))).scalar_one()
    assert path.exists()
    assert (mode, timeout, fks) == ("wal", 2500, 1)
    # The mode is a property of the file: a plain sqlite3 connection sees it too.
    with sqlite3.connect(path) as plain:
        assert plain.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_a_failed_transaction_rolls_back(tmp_path: Path) -> None:
    async with Database(f"sqlite:///{tmp_path / 'p.db'}") as db:
        async with db.transaction() as conn:
            await conn.execute(text("CREATE TABLE t (x INTEGER)"))

        async def insert_then_fail() -> None:
            async with db.transaction() as conn:
                await conn.execute(text("INSERT INTO t VALUES (1)"))
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            await insert_then_fail()
        async with db.engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 0
