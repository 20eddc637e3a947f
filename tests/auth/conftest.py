from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from podium.storage import Database, migrate
from tests.storage import database_url


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database: an SQLite file, or a fresh database on the local PostgreSQL."""
    async with database_url(request.param, tmp_path) as url:
        yield url


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    """A migrated database."""
    await migrate(db_url)
    database = Database(db_url)
    try:
        yield database
    finally:
        await database.dispose()
