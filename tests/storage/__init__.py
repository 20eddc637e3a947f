"""Helpers shared by the storage tests (and tests of commands that use the database)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

POSTGRES_ADMIN_URL = os.environ.get("PODIUM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
"""The PostgreSQL server the tests create their throw-away databases on."""

_postgres_error: list[str | None] = []


async def _postgres_problem() -> str | None:
    if not _postgres_error:
        try:
            conn = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            _postgres_error.append(f"{type(exc).__name__}: {exc}")
        else:
            await conn.close()
            _postgres_error.append(None)
    return _postgres_error[0]


async def require_postgres() -> None:
    """Fail under CI, skip elsewhere, when the PostgreSQL server cannot be reached."""
    problem = await _postgres_problem()
    if problem is None:
        return
    message = f"PostgreSQL at {make_url(POSTGRES_ADMIN_URL).render_as_string()} is unreachable ({problem})"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{message}; CI must run the PostgreSQL tests")
    pytest.skip(f"{message}; start it (or set PODIUM_TEST_POSTGRES_URL) to run the PostgreSQL tests")


@asynccontextmanager
async def fresh_postgres_database() -> AsyncIterator[str]:
    """Create an empty database for one test, yield its URL, and drop it afterwards."""
    await require_postgres()
    name = f"podium_test_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@asynccontextmanager
async def database_url(kind: str, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of ``kind`` (``sqlite`` or ``postgresql``) for one test."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'data' / 'podium.db'}"
    else:
        async with fresh_postgres_database() as url:
            yield url


class TcpProxy:
    """A loopback TCP proxy that can be stopped and restarted on the same port: a database outage."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Refuse new connections and cut the open ones, as a crashed server would."""
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        await self._server.wait_closed()
        self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.transport.abort()
        self._writers.discard(writer)
