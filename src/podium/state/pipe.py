"""``RedisPipe``: one pipelined Redis connection per event loop for the request path's two script calls.

Every governed request makes two calls to Redis (``reserve`` before the upstream call, ``commit``
after it). Through redis-py's asyncio client a commit costs 146-180 µs of gateway CPU (pure-Python
command packing, a pool checkout, a retry wrapper); written straight to one connection with
hiredis's C packer and reader it costs 20-35 µs (``benchmarks/redis_calls.py``, concurrency 64 and 1).
Calls are pipelined: each is written at once and its reply is matched by order (Redis answers a
connection's commands in the order it received them), so concurrent requests share the connection
without waiting for each other's round trips.

Settings come from the redis-py client the store already has (host and port or unix socket, TLS,
user, password, database), so one URL configures both. Everything else (reads, locks, pub/sub) stays
on redis-py.

A call in flight when the connection drops fails with :class:`~podium.errors.StateStoreUnavailable`
and is not retried: Redis may already have run it, and running a settlement twice would charge twice.
The next call connects again.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import hiredis
from redis.asyncio import Redis
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection

from podium.errors import StateStoreUnavailable

T = TypeVar("T")

_CONNECT_TIMEOUT = 5.0
CLIENT_NAME = "podium-pipe"  # what ``CLIENT LIST`` shows for the pipe's connections


@dataclass(frozen=True, slots=True)
class _Target:
    """Where and how to connect: what redis-py's connection pool was configured with."""

    host: str
    port: int
    path: str | None
    ssl: ssl.SSLContext | None
    username: str | None
    password: str | None
    db: int
    connect_timeout: float

    def describe(self) -> str:
        return self.path or f"{self.host}:{self.port}"


def _target(client: Redis) -> _Target | None:
    """The pipe's settings from ``client``'s pool; None when it uses something the pipe does not know."""
    pool = client.connection_pool
    kw: Mapping[str, Any] = pool.connection_kwargs
    cls = pool.connection_class
    if cls not in (Connection, SSLConnection, UnixDomainSocketConnection):
        return None
    if kw.get("credential_provider") is not None or int(kw.get("protocol") or 2) not in (2, 3):
        return None
    context = None
    if cls is SSLConnection:
        context = ssl.create_default_context(cafile=kw.get("ssl_ca_certs"), capath=kw.get("ssl_ca_path"))
        reqs = kw.get("ssl_cert_reqs", "required")
        if reqs in ("none", ssl.CERT_NONE):
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif not kw.get("ssl_check_hostname", True):
            context.check_hostname = False
        if kw.get("ssl_certfile"):
            context.load_cert_chain(kw["ssl_certfile"], kw.get("ssl_keyfile"), kw.get("ssl_password"))
    timeout = kw.get("socket_connect_timeout") or _CONNECT_TIMEOUT
    return _Target(
        host=str(kw.get("host", "localhost")),
        port=int(kw.get("port", 6379)),
        path=kw.get("path") if cls is UnixDomainSocketConnection else None,
        ssl=context,
        username=kw.get("username"),
        password=kw.get("password"),
        db=int(kw.get("db") or 0),
        connect_timeout=float(timeout),
    )


def _pack(args: Sequence[str | bytes | memoryview]) -> bytes:
    # hiredis's stub types the argument as a one-element tuple; any tuple of encodables is accepted.
    packed: bytes = hiredis.pack_command(tuple(args))  # type: ignore[arg-type]
    return packed


class _Connection(asyncio.Protocol):
    """One connection: writes packed commands, hands each reply to the oldest waiting call."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.transport: asyncio.Transport | None = None
        self.reader = hiredis.Reader()
        self.waiting: collections.deque[asyncio.Future[Any]] = collections.deque()
        self.lost: StateStoreUnavailable | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have the same methods.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        try:
            while (reply := self.reader.gets()) is not False:
                fut = self.waiting.popleft()
                if not fut.done():  # its caller may have been cancelled; the reply is dropped
                    fut.set_result(reply)
        except hiredis.ProtocolError as exc:  # never seen from a real server; do not guess further
            self._fail(StateStoreUnavailable(f"Redis at {self.where} sent a malformed reply: {exc}"))
            assert self.transport is not None
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        reason = f": {exc}" if exc else ""
        self._fail(StateStoreUnavailable(f"the connection to Redis at {self.where} was lost{reason}"))

    def _fail(self, error: StateStoreUnavailable) -> None:
        self.lost = error
        while self.waiting:
            fut = self.waiting.popleft()
            if not fut.done():
                fut.set_exception(error)

    @property
    def usable(self) -> bool:
        """Neither lost nor closing (a closed transport reports its loss a loop iteration later)."""
        return self.lost is None and self.transport is not None and not self.transport.is_closing()

    def send(self, packed: bytes) -> asyncio.Future[Any]:
        if self.lost is not None:
            raise StateStoreUnavailable(self.lost.message)
        assert self.transport is not None
        try:
            self.transport.write(packed)
        except (RuntimeError, OSError) as exc:  # uvloop refuses writes to a closed transport
            raise StateStoreUnavailable(f"the connection to Redis at {self.where} is closed: {exc}") from exc
        fut = asyncio.get_running_loop().create_future()
        self.waiting.append(fut)
        return fut

    def close(self) -> None:
        if self.transport is not None and self.lost is None:
            self.transport.close()


class RedisPipe:
    """Pipelined calls to Redis over one connection per event loop.

    Build it with :meth:`for_client`, which copies a redis-py client's settings (address, TLS,
    credentials, database) and returns None for a client the pipe cannot copy (a custom connection
    class or credential provider): the caller then stays on redis-py.
    """

    def __init__(self, target: _Target) -> None:
        self._target = target
        # Weak: a loop that is gone (a finished test, a closed worker) takes its connection with it.
        self._connections: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Connection] = (
            weakref.WeakKeyDictionary()
        )
        self._connecting: dict[asyncio.AbstractEventLoop, asyncio.Task[_Connection]] = {}

    @classmethod
    def for_client(cls, client: Redis) -> RedisPipe | None:
        """A pipe to the server ``client`` talks to, or None when its settings cannot be copied."""
        target = _target(client)
        return None if target is None else cls(target)

    async def evalsha(
        self, sha: str, script: str | bytes | memoryview, keys: Sequence[str], args: Sequence[str]
    ) -> Any:
        """Run a script by its SHA1, sending its body once when the server does not have it.

        Raises:
            StateStoreUnavailable: no connection, or it dropped before the reply came.
            RedisScriptError: the script raised an error.
        """
        reply = await self.call("EVALSHA", sha, str(len(keys)), *keys, *args)
        if _noscript(reply):
            return await self._eval(script, keys, args)
        return _script_result(reply)

    async def _eval(self, script: str | bytes | memoryview, keys: Sequence[str], args: Sequence[str]) -> Any:
        # A restarted or flushed server: EVAL runs the body and caches it under the same SHA.
        return _script_result(await self.call("EVAL", script, str(len(keys)), *keys, *args))

    def evalsha_now(
        self, sha: str, script: str | bytes | memoryview, keys: Sequence[str], args: Sequence[str]
    ) -> asyncio.Future[Any] | None:
        """Write an EVALSHA now and return its reply's future; None when this loop has no open connection.

        A call made on this loop afterwards runs after it in Redis (one connection, replies in order).
        The future resolves as :meth:`evalsha` returns, NOSCRIPT fallback included.

        Raises:
            StateStoreUnavailable: the connection turned out to be closed while writing.
        """
        loop = asyncio.get_running_loop()
        conn = self._connections.get(loop)
        if conn is None or not conn.usable:
            return None
        sent = conn.send(_pack(("EVALSHA", sha, str(len(keys)), *keys, *args)))
        out: asyncio.Future[Any] = loop.create_future()

        def replied(fut: asyncio.Future[Any]) -> None:
            if not fut.cancelled() and fut.exception() is None and _noscript(fut.result()):
                # Rare (a restarted or flushed server): the body is sent, later than calls made meanwhile.
                resent = asyncio.ensure_future(self._eval(script, keys, args))
                resent.add_done_callback(lambda again: forward(again, out))
            else:
                forward(fut, out, _script_result)

        sent.add_done_callback(replied)
        return out

    async def call(self, *args: str | bytes | memoryview) -> Any:
        """Send one command; returns its reply (a ``hiredis.ReplyError`` for an error reply)."""
        loop = asyncio.get_running_loop()
        conn = self._connections.get(loop)
        if conn is None or not conn.usable:
            conn = await self._connect(loop)
        return await conn.send(_pack(args))

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> _Connection:
        task = self._connecting.get(loop)
        if task is None:
            # One connection attempt per loop, however many calls arrive while it is under way.
            task = self._connecting[loop] = loop.create_task(self._open(loop))
            task.add_done_callback(lambda _: self._connecting.pop(loop, None))
        return await asyncio.shield(task)

    async def _open(self, loop: asyncio.AbstractEventLoop) -> _Connection:
        t = self._target
        where = t.describe()
        try:
            async with asyncio.timeout(t.connect_timeout):
                if t.path is not None:
                    transport, conn = await loop.create_unix_connection(lambda: _Connection(where), t.path)
                else:
                    transport, conn = await loop.create_connection(
                        lambda: _Connection(where), t.host, t.port, ssl=t.ssl
                    )
                # uvloop may call connection_made after returning: the transport is usable already.
                conn.connection_made(transport)
                setup: list[asyncio.Future[Any]] = []
                if t.password is not None:
                    auth = ("AUTH", t.username, t.password) if t.username else ("AUTH", t.password)
                    setup.append(conn.send(_pack(auth)))
                if t.db:
                    setup.append(conn.send(_pack(("SELECT", str(t.db)))))
                setup.append(conn.send(_pack(("CLIENT", "SETNAME", CLIENT_NAME))))
                for reply in await asyncio.gather(*setup):
                    if isinstance(reply, hiredis.ReplyError):
                        conn.close()
                        raise StateStoreUnavailable(f"Redis at {where} refused the connection: {reply}")
        except (OSError, TimeoutError) as exc:
            raise StateStoreUnavailable(f"cannot connect to Redis at {where}: {exc or 'timed out'}") from exc
        old = self._connections.get(loop)
        if old is not None:
            old.close()
        self._connections[loop] = conn
        return conn

    async def aclose(self) -> None:
        """Close every connection (calls in flight fail with ``StateStoreUnavailable``)."""
        for task in list(self._connecting.values()):
            task.cancel()
        current = asyncio.get_running_loop()
        for loop, conn in list(self._connections.items()):
            if loop is current:
                conn.close()
            elif not loop.is_closed():
                loop.call_soon_threadsafe(conn.close)
        self._connections.clear()


def _noscript(reply: Any) -> bool:
    return isinstance(reply, hiredis.ReplyError) and str(reply).startswith("NOSCRIPT")


def _script_result(reply: Any) -> Any:
    if isinstance(reply, hiredis.ReplyError):
        raise RedisScriptError(str(reply))
    return reply


def forward(
    source: asyncio.Future[Any], target: asyncio.Future[T], convert: Callable[[Any], T] | None = None
) -> None:
    """Settle ``target`` as ``source`` ended: its result (through ``convert``), error or cancellation.

    An error raised by ``convert`` becomes ``target``'s error. Nothing happens if ``target`` is done.
    """
    if target.done():
        return
    if source.cancelled():
        target.cancel()
    elif (exc := source.exception()) is not None:
        target.set_exception(exc)
    else:
        try:
            value = source.result() if convert is None else convert(source.result())
        except Exception as error:
            target.set_exception(error)
        else:
            target.set_result(value)


class RedisScriptError(RuntimeError):
    """A governance script failed inside Redis: a bug in podium or a key of the wrong type."""
