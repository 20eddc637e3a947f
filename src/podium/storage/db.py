"""The database handle: one async engine from a URL, for SQLite and PostgreSQL alike.

URLs are normalised to their async drivers, so users can write the short forms they know::

    sqlite:///data/podium.db      ->  sqlite+aiosqlite:///data/podium.db
    postgresql://user@host/db     ->  postgresql+asyncpg://user@host/db
    postgres://user@host/db       ->  postgresql+asyncpg://user@host/db

SQLite runs in WAL mode (readers never wait for the writer) with a busy timeout (a second writer
waits instead of failing at once) and foreign keys on (deleting a conversation deletes its messages).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, InvalidRequestError
from sqlalchemy.pool import ConnectionPoolEntry

from podium.errors import ConfigError
from podium.storage import jsontext
from podium.storage.aio import AsyncConnection, AsyncEngine, create_async_engine

_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
}
_BEGIN_OPTION = "podium_sqlite_begin"


def normalize_url(url: str | URL) -> URL:
    """Return ``url`` with the async driver podium uses for its database.

    Args:
        url: A database URL, e.g. ``sqlite:///podium.db`` or ``postgresql://user@host/db``.

    Raises:
        ConfigError: the URL cannot be parsed or names a database podium does not support.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(
            "invalid database URL: use sqlite:///path/to/podium.db or postgresql://user@host/db"
        ) from exc
    backend = parsed.drivername.partition("+")[0]
    if backend not in _ASYNC_DRIVERS:
        raise ConfigError(
            f"unsupported database {backend!r} in the database URL: use sqlite:///path/to/podium.db "
            "or postgresql://user@host/db"
        )
    if "+" not in parsed.drivername:
        parsed = parsed.set(drivername=_ASYNC_DRIVERS[backend])
    if parsed.drivername == "postgresql+asyncpg" and "sslmode" in parsed.query:
        # libpq spells it sslmode, asyncpg spells it ssl; accept the URL users copy from their host.
        query = dict(parsed.query)
        query.setdefault("ssl", query.pop("sslmode"))
        parsed = parsed.set(query=query)
    return parsed


class Database:
    """An async engine plus the dialect details podium's storage code needs.

    Args:
        url: The database URL (short forms are normalised, see :func:`normalize_url`).
        busy_timeout: SQLite only: seconds a writer waits for another writer's lock before failing.
        connect_timeout: PostgreSQL only: seconds to wait for a connection to open.
        echo: Log every SQL statement (debugging).

    Raises:
        ConfigError: the URL is invalid or unsupported.
    """

    def __init__(
        self,
        url: str | URL,
        *,
        busy_timeout: float = 5.0,
        connect_timeout: float = 10.0,
        echo: bool = False,
    ) -> None:
        self.url = normalize_url(url)
        self.dialect = self.url.get_backend_name()
        # PostgreSQL refuses NaN in JSON; refusing it everywhere makes a record fail the same way on SQLite.
        kwargs: dict[str, Any] = {"echo": echo, "json_serializer": jsontext.strict}
        if self.is_sqlite:
            _create_parent_dir(self.url)
        else:
            # Pre-ping replaces connections that died while the database restarted, so the first
            # write after an outage succeeds instead of failing on a stale socket.
            kwargs.update(pool_pre_ping=True, connect_args={"timeout": connect_timeout})
        try:
            self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        except (ArgumentError, InvalidRequestError, ImportError) as exc:  # ImportError: driver not installed
            raise ConfigError(
                f"cannot use the database URL {self.display_url}: {exc}; use sqlite:///path/to/podium.db "
                "or postgresql://user@host/db"
            ) from exc
        if self.is_sqlite:
            _configure_sqlite(self.engine, busy_timeout)

    @property
    def is_sqlite(self) -> bool:
        """Whether the database is SQLite (single writer; no row locks)."""
        return self.dialect == "sqlite"

    @property
    def display_url(self) -> str:
        """The URL with its password hidden, for messages and logs."""
        return self.url.render_as_string(hide_password=True)

    @asynccontextmanager
    async def transaction(self, *, write: bool = False) -> AsyncIterator[AsyncConnection]:
        """Open a connection inside a transaction that commits on success and rolls back on error.

        Args:
            write: Take SQLite's write lock at ``BEGIN`` (``BEGIN IMMEDIATE``). Needed when the
                transaction reads rows it then writes based on what it read (the audit chain head), so
                that two processes sharing one SQLite file cannot both read the same state.
        """
        async with self.engine.connect() as conn:
            if write and self.is_sqlite:
                await conn.execution_options(**{_BEGIN_OPTION: "BEGIN IMMEDIATE"})
            async with conn.begin():
                yield conn

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.dispose()

    def __repr__(self) -> str:
        return f"Database({self.display_url!r})"


def _create_parent_dir(url: URL) -> None:
    path = url.database
    if path and path != ":memory:" and not path.startswith("file:"):
        Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _configure_sqlite(engine: AsyncEngine, busy_timeout: float) -> None:
    # pysqlite opens transactions lazily and only before DML, so a SELECT followed by an UPDATE would
    # not be one transaction. SQLAlchemy's documented fix: turn the driver's handling off and emit
    # BEGIN ourselves, which also makes DDL (migrations) transactional.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            cursor.execute("PRAGMA foreign_keys = ON")
            # Another connection may hold a lock while the mode is switched; the file keeps WAL mode
            # once any connection has set it, so this connection uses it all the same.
            with contextlib.suppress(sqlite3.OperationalError):
                cursor.execute("PRAGMA journal_mode = WAL")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(conn.get_execution_options().get(_BEGIN_OPTION, "BEGIN"))
