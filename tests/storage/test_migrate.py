from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from podium.storage import Database, current_revision, downgrade, migrate
from podium.storage.migrate import HEAD, MIGRATIONS_DIR, head_revision
from podium.storage.tables import GENESIS_HASH, metadata

TABLES = {
    "request_log",
    "conversations",
    "conversation_messages",
    "performance_samples",
    "api_keys",
    "audit_events",
    "audit_chain_head",
}


async def _tables(url: str) -> set[str]:
    async with Database(url) as db, db.engine.connect() as conn:
        return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))


async def test_upgrade_downgrade_and_upgrade_again(db_url: str) -> None:
    assert await current_revision(db_url) is None
    assert not (await _tables(db_url)) & TABLES

    await migrate(db_url)
    assert await current_revision(db_url) == head_revision() == HEAD
    assert await _tables(db_url) >= TABLES
    async with Database(db_url) as db, db.engine.connect() as conn:
        head = (await conn.execute(text("SELECT id, seq, hash FROM audit_chain_head"))).all()
    assert [tuple(r) for r in head] == [(1, 0, GENESIS_HASH)]

    await downgrade(db_url, "base")
    assert await current_revision(db_url) is None
    assert not (await _tables(db_url)) & TABLES

    await migrate(db_url)
    assert await current_revision(db_url) == "0001"
    assert await _tables(db_url) >= TABLES


async def test_migrated_schema_matches_the_table_definitions(db_url: str) -> None:
    await migrate(db_url)
    async with Database(db_url) as db, db.engine.connect() as conn:
        diff = await conn.run_sync(
            lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"compare_type": True}), metadata
            )
        )
    assert diff == []


async def test_replicas_migrating_at_once_both_succeed(db_url: str) -> None:
    await asyncio.gather(migrate(db_url), migrate(db_url), migrate(db_url))
    assert await current_revision(db_url) == "0001"
    async with Database(db_url) as db, db.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM audit_chain_head"))).scalar_one() == 1


def test_migrations_ship_inside_the_package() -> None:
    assert MIGRATIONS_DIR.parent.name == "storage"
    assert (MIGRATIONS_DIR / "env.py").is_file()
    assert (MIGRATIONS_DIR / "script.py.mako").is_file()
    assert (MIGRATIONS_DIR / "versions" / "0001_initial.py").is_file()
