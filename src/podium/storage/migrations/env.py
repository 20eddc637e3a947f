"""Alembic environment for podium's schema.

podium runs it through :func:`podium.storage.migrate.migrate`, which hands over an open connection in
``config.attributes["connection"]``. Run directly by the ``alembic`` command (to write a new revision),
it reads ``sqlalchemy.url`` from the Alembic config and connects through :class:`~podium.storage.db.Database`,
so SQLite gets the same settings as at run time.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from podium.storage.db import Database
from podium.storage.tables import metadata

config = context.config


def _configure(connection: Connection) -> None:
    # Batch mode lets later revisions alter SQLite tables (copy-and-move), since SQLite's ALTER is limited.
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_own_engine(url: str) -> None:
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            await conn.run_sync(_configure)
            await conn.commit()
    finally:
        await db.dispose()


def _run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set sqlalchemy.url in the Alembic config, or use podium.storage.migrate")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    asyncio.run(_run_with_own_engine(url))


_run()
