"""SQLAlchemy Core on asyncio drivers, without importing ``sqlalchemy.ext.asyncio``.

Importing SQLAlchemy's asyncio extension imports its ORM session support, and with it the whole
ORM: 39 modules and 6 MiB of resident memory in every gateway process (measured on ``podium serve``
with 100 providers: 85.4 MiB against 79.4 MiB). podium uses Core only. This module is the part of
that extension podium needs, built on the same mechanism: a Core ``Engine`` whose dialect drives an
asyncio database driver (aiosqlite, asyncpg), called inside a greenlet (``greenlet_spawn``) so that
the driver's awaits suspend the calling coroutine instead of blocking the event loop.

Results come back buffered, as the asyncio dialects fetch every row before returning; server-side
cursors (``stream_results``, ``yield_per``) are refused, as podium has no use for them.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import create_engine
from sqlalchemy.engine import URL, Connection, CursorResult, Dialect, Engine
from sqlalchemy.engine.interfaces import CoreExecuteOptionsParameter
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.sql.base import Executable
from sqlalchemy.util import greenlet_spawn

if TYPE_CHECKING:
    from sqlalchemy.util.typing import TupleAny

P = ParamSpec("P")
T = TypeVar("T")


class AsyncConnection:
    """A Core ``Connection`` whose calls are awaited.

    Args:
        sync_connection: The Core connection (on an asyncio dialect) every call is made on.
    """

    __slots__ = ("sync_connection",)

    def __init__(self, sync_connection: Connection) -> None:
        self.sync_connection = sync_connection

    @property
    def dialect(self) -> Dialect:
        """The database's dialect (``dialect.name`` is ``"sqlite"`` or ``"postgresql"``)."""
        return self.sync_connection.dialect

    async def execute(
        self,
        statement: Executable,
        parameters: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        *,
        execution_options: CoreExecuteOptionsParameter | None = None,
    ) -> CursorResult[*TupleAny]:
        """Execute a Core statement (a list of parameter dicts runs it once per dict).

        Args:
            statement: A ``select()``, ``insert()``, ``update()``, ``delete()``, ``text()`` or DDL.
            parameters: Values bound into the statement.
            execution_options: Options for this execution only.

        Returns:
            The buffered result.
        """
        # _require_await: a statement that never awaited the driver ran on a blocking one; fail loudly.
        result = await greenlet_spawn(
            self.sync_connection.execute,
            statement,
            parameters,
            execution_options=execution_options,
            _require_await=True,
        )
        options = result.context.execution_options
        if options.get("stream_results") or options.get("yield_per"):
            # A server-side cursor would be read outside the greenlet, where the driver cannot await.
            await greenlet_spawn(result.close)
            raise InvalidRequestError("podium's storage reads results whole: no stream_results/yield_per")
        return result

    async def exec_driver_sql(self, statement: str, parameters: list[tuple[Any, ...]]) -> None:
        """Run SQL text in the driver's own parameter style, once per tuple (``executemany``).

        Values go to the driver as they are: no type processing (see ``podium.storage.bulk``).
        """
        await greenlet_spawn(self.sync_connection.exec_driver_sql, statement, parameters, _require_await=True)

    async def run_sync(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Call ``fn(sync_connection, *args, **kwargs)``, whose database calls may then be synchronous.

        Used for code written against the synchronous API (Alembic's migrations).
        """
        return await greenlet_spawn(functools.partial(fn, self.sync_connection, *args, **kwargs))

    async def execution_options(self, **options: Any) -> AsyncConnection:
        """Set options on this connection for every later execution; returns the connection."""
        await greenlet_spawn(self.sync_connection.execution_options, **options)
        return self

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[None]:
        """A transaction: committed when the block ends, rolled back when it raises.

        Statements after the transaction was ended inside the block (by :meth:`commit`) are refused,
        as by SQLAlchemy: they would otherwise start a new transaction that nobody commits.
        """
        transaction = await greenlet_spawn(self.sync_connection.begin)
        transaction.__enter__()  # no I/O: marks the transaction as the block's, which the check needs
        try:
            yield
        except BaseException as exc:
            await greenlet_spawn(transaction.__exit__, type(exc), exc, exc.__traceback__)
            raise
        await greenlet_spawn(transaction.__exit__, None, None, None)

    async def commit(self) -> None:
        """Commit the transaction the connection began on its own (without :meth:`begin`)."""
        await greenlet_spawn(self.sync_connection.commit)

    async def close(self) -> None:
        """Return the connection to its pool (rolling back a transaction left open)."""
        await greenlet_spawn(self.sync_connection.close)


class AsyncEngine:
    """A Core ``Engine`` on an asyncio driver, handing out :class:`AsyncConnection` objects.

    Args:
        sync_engine: The engine; event listeners (``connect``, ``begin``, ``before_cursor_execute``)
            are registered on it.
    """

    __slots__ = ("sync_engine",)

    def __init__(self, sync_engine: Engine) -> None:
        self.sync_engine = sync_engine

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A pooled connection for the block; it returns to the pool even if the block is cancelled."""
        conn = AsyncConnection(await greenlet_spawn(self.sync_engine.connect))
        try:
            yield conn
        finally:
            await _complete(conn.close())

    async def dispose(self) -> None:
        """Close every connection in the pool."""
        await greenlet_spawn(self.sync_engine.dispose)


def create_async_engine(url: str | URL, **kwargs: Any) -> AsyncEngine:
    """An engine for ``url`` on an asyncio driver (``sqlite+aiosqlite``, ``postgresql+asyncpg``).

    Args:
        url: The database URL.
        **kwargs: ``sqlalchemy.create_engine`` arguments.

    Raises:
        sqlalchemy.exc.InvalidRequestError: the URL names a blocking (not asyncio) driver.
        sqlalchemy.exc.ArgumentError: the URL or an argument is invalid (a driver not installed, ...).
    """
    # `_is_async` is how SQLAlchemy's own create_async_engine asks for a dialect's asyncio variant
    # (postgresql+psycopg -> psycopg_async); aiosqlite and asyncpg are their own asyncio variants.
    engine = create_engine(url, _is_async=True, **kwargs)
    if not engine.dialect.is_async:
        # A blocking driver would stall the event loop on every query; refuse it as the extension does.
        engine.dispose()
        raise InvalidRequestError(
            f"the {engine.dialect.driver!r} database driver is not an asyncio driver "
            "(use sqlite+aiosqlite or postgresql+asyncpg)"
        )
    return AsyncEngine(engine)


async def _complete(cleanup: Coroutine[Any, Any, None]) -> None:
    # A connection must reach its pool even when the task using it is cancelled (a client that
    # disconnects, a shutdown): the close runs to its end in a task of its own, and the cancellation
    # is passed on after it.
    task = asyncio.ensure_future(cleanup)
    cancelled: asyncio.CancelledError | None = None
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError as exc:
            if task.done() and task.cancelled():
                raise
            cancelled = exc
    task.result()
    if cancelled is not None:
        raise cancelled
