"""Run podium's schema migrations from code: no ``alembic.ini`` needed.

The Alembic environment ships inside the package (``podium/storage/migrations``)::

    await migrate("sqlite:///data/podium.db")          # up to the newest revision
    await downgrade("postgresql://host/db", "base")    # remove every podium table
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError

from podium.storage.db import Database

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
"""The Alembic environment shipped with podium."""

HEAD = "0001"
"""The newest revision in ``migrations/versions`` (a test keeps the two equal). Knowing it without
Alembic lets a start-up against an up-to-date database skip importing Alembic at all."""

# Any constant works: it only has to be the same for every podium process sharing a database.
_ADVISORY_LOCK_ID = 0x706F6469756D


def alembic_config() -> Config:
    """An Alembic config pointing at podium's migrations (for tools that need one)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def head_revision() -> str:
    """The newest revision this version of podium ships, as Alembic reads it."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


async def migrate(url: str | URL | Database, revision: str = "head") -> None:
    """Upgrade the database's schema to ``revision`` (the newest by default); creates it if empty.

    Replicas starting together are safe: on PostgreSQL the upgrade holds an advisory lock, on SQLite
    the transaction's write lock.
    """
    if revision in ("head", HEAD) and await _at_head(url):
        return
    async with _database(url) as db, db.transaction(write=True) as conn:
        if not db.is_sqlite:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _ADVISORY_LOCK_ID})
        await conn.run_sync(_upgrade, revision)


async def downgrade(url: str | URL | Database, revision: str) -> None:
    """Downgrade the database's schema to ``revision`` (``"base"`` removes every podium table)."""
    async with _database(url) as db, db.transaction(write=True) as conn:
        if not db.is_sqlite:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _ADVISORY_LOCK_ID})
        await conn.run_sync(_downgrade, revision)


async def current_revision(url: str | URL | Database) -> str | None:
    """The revision the database is at; None for a database podium never migrated."""
    from alembic.runtime.migration import MigrationContext

    async with _database(url) as db, db.engine.connect() as conn:
        return await conn.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())


async def _at_head(url: str | URL | Database) -> bool:
    """Whether the schema is already at ``HEAD`` (one plain query; False when there is no schema)."""
    async with _database(url) as db, db.engine.connect() as conn:
        try:
            rows = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
        except DBAPIError:
            return False  # no version table yet: a new database
    return [r[0] for r in rows] == [HEAD]


def _upgrade(connection: Connection, revision: str) -> None:
    from alembic import command

    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


def _downgrade(connection: Connection, revision: str) -> None:
    from alembic import command

    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.downgrade(cfg, revision)


@asynccontextmanager
async def _database(url: str | URL | Database) -> AsyncIterator[Database]:
    if isinstance(url, Database):
        yield url
        return
    db = Database(url)
    try:
        yield db
    finally:
        await db.dispose()
