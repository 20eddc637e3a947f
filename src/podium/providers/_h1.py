"""A lean HTTP/1.1 client for provider traffic: keep-alive pools of asyncio protocols parsed by httptools.

Why not aiohttp's client: profiled on podium's request path it was the largest single CPU cost
(about a third of the event loop's time per proxied request; benchmarks/RESULTS.md, fourth round).
A provider adapter sends a few request shapes to one origin, so what it needs is small: a pool of
keep-alive connections, one ``transport.write`` per request, and a response parser. The parser is
httptools (llhttp, the parser uvicorn serves with), so no HTTP grammar is written here.

Failures are typed so the adapter can map them (``podium.providers._http.transport_error``):
``ConnectFailed`` (no connection), ``ConnectionClosed`` (lost before a whole header block),
``TruncatedBody`` (lost inside the body), ``BadResponse`` (not HTTP/1.1), ``TimeoutError``.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import zlib
from collections import deque
from collections.abc import AsyncIterator, Mapping
from typing import Final, cast
from urllib.parse import SplitResult, quote, urlencode, urlsplit

import httptools

_KEEPALIVE: Final = 15.0  # seconds an idle connection is kept; a stale one is retried, not failed
_HIGH_WATER: Final = 1 << 20  # body bytes buffered before reading from the socket pauses
_UNSAFE_TARGET: Final = re.compile(r"[^\x21-\x7e]")
_BREAK: Final = re.compile(r"[\r\n]")


class ConnectFailed(ConnectionError):
    """The origin could not be reached (refused, unresolvable, unreachable)."""


class ConnectionClosed(ConnectionError):
    """The connection ended before a complete response header block arrived."""


class TruncatedBody(ConnectionError):
    """The connection ended inside the response body."""


class BadResponse(ConnectionError):
    """The origin answered with something that is not valid HTTP/1.1."""


class InvalidURL(ValueError):
    """A URL that this client cannot send to (scheme, host or port)."""


class Origin:
    """Where a pool connects: scheme, host, port, and the request-line and Host header that go with them.

    Args:
        parts: An absolute ``http://`` or ``https://`` URL on the origin, split.

    Raises:
        InvalidURL: not an http(s) URL with a host, or a port out of range.
    """

    __slots__ = ("host", "host_header", "key", "port", "tls")

    def __init__(self, parts: SplitResult) -> None:
        try:
            port = parts.port
        except ValueError as exc:
            raise InvalidURL(str(exc)) from exc
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidURL(f"not an http(s) URL with a host: {parts.geturl()!r}")
        self.tls = parts.scheme == "https"
        self.host = parts.hostname
        default = 443 if self.tls else 80
        self.port = port or default
        name = f"[{self.host}]" if ":" in self.host else self.host
        self.host_header = name if self.port == default else f"{name}:{self.port}"
        self.key = (parts.scheme, self.host, self.port)


def split_url(url: str, params: Mapping[str, str] | None) -> tuple[Origin, str]:
    """Return the origin of an absolute URL and its request target (path and query, no fragment).

    Raises:
        InvalidURL: not an http(s) URL with a host.
    """
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise InvalidURL(str(exc)) from exc
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if params:
        target += ("&" if parts.query else "?") + urlencode(params)
    return Origin(parts), target


class Connection(asyncio.Protocol):
    """One keep-alive connection; it carries one request and response at a time.

    httptools calls the ``on_*`` methods from inside ``data_received``; the reading side waits on a
    single future that every state change resolves.
    """

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reused = False
        self.idle_since = 0.0
        self.counted = True
        self.active = False  # a request is out and its response not yet handed back
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[None] | None = None
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.chunks: list[bytes] = []
        self.buffered = 0
        self.headers_done = False
        self.complete = False
        self.keep_alive = False
        self.error: BaseException | None = None
        self.got_bytes = False
        self.last_read = 0.0
        self._informational = False
        self._paused = False

    # ------------------------------------------------------------------ asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it: no isinstance check.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if not self.active:  # bytes on an idle connection (a server's 408 before it hangs up): drop it
            self.close()
            return
        self.got_bytes = True
        self.last_read = self.pool.loop.time()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.fail(BadResponse("the origin switched protocols"))
        except httptools.HttpParserError as exc:
            self.fail(BadResponse(f"invalid HTTP response ({exc})"))

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.complete and self.error is None:
            if self.headers_done and self._until_eof():
                self.complete = True  # a body delimited by the connection's end is whole now
            elif self.headers_done:
                self.error = TruncatedBody("the connection closed inside the response body")
            else:
                reason = f" ({exc})" if exc else ""
                self.error = ConnectionClosed(f"the connection closed before a response{reason}")
        self._wake()
        self.pool.forget(self)

    # ------------------------------------------------------------------ httptools callbacks
    def on_message_begin(self) -> None:
        self.headers = {}

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200:  # 100 Continue and the like: the real response follows
            self._informational = True
            return
        self._informational = False
        self.status = status
        self.headers_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > _HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._informational:
            return
        self.complete = True
        self.keep_alive = self._parser.should_keep_alive()
        self._wake()

    # ------------------------------------------------------------------ reading side
    def _until_eof(self) -> bool:
        return "content-length" not in self.headers and "chunked" not in self.headers.get(
            "transfer-encoding", ""
        )

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def fail(self, exc: BaseException) -> None:
        """End the exchange with ``exc`` and drop the connection."""
        if self.error is None and not self.complete:
            self.error = exc
        self._wake()
        self.close()

    async def wait(self) -> None:
        """Wait for the next state change (headers, body bytes, completion or failure)."""
        if self.error is not None:
            raise self.error
        waiter = self._waiter = self.pool.loop.create_future()
        await waiter
        if self.error is not None:
            raise self.error

    def take(self) -> bytes:
        """Return and forget the body bytes buffered so far."""
        chunks = self.chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self.chunks = []
        self.buffered = 0
        if self._paused and self.transport is not None and not self.closed:
            self._paused = False
            self.transport.resume_reading()
        return data

    def send(self, head: bytes, body: bytes | None) -> None:
        """Write one request; the previous response must have been read to its end."""
        self._reset()
        self.active = True
        assert self.transport is not None
        self.transport.write(head + body if body else head)

    def close(self) -> None:
        """Close the socket (what has not been read is dropped)."""
        if self.transport is not None and not self.closed:
            self.transport.close()
        self.closed = True
        self.pool.forget(self)


class Pool:
    """The keep-alive connections to one origin, at most ``limit`` open at once.

    Args:
        origin: Where to connect.
        limit: Most connections open at once; more requests wait for one to come free.
        connect_timeout: Seconds allowed to open a connection (TLS handshake included).
    """

    def __init__(self, origin: Origin, limit: int, connect_timeout: float) -> None:
        self.origin = origin
        self.loop = asyncio.get_running_loop()
        self.limit = limit
        self.connect_timeout = connect_timeout
        self.open = 0
        self._idle: list[Connection] = []
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._ssl: ssl.SSLContext | None = ssl.create_default_context() if origin.tls else None

    async def acquire(self, fresh: bool = False) -> Connection:
        """Return an idle connection or a new one, waiting while ``limit`` are busy.

        Args:
            fresh: Skip idle connections (after one turned out to have been closed by the origin).
        """
        now = self.loop.time()
        while True:
            while self._idle and not fresh:
                conn = self._idle.pop()
                if not conn.closed and now - conn.idle_since < _KEEPALIVE:
                    conn.reused = True
                    return conn
                conn.close()
            if self.open < self.limit:
                self.open += 1
                try:
                    return await self._connect()
                except BaseException:
                    self.open -= 1
                    self._wake_one()
                    raise
            waiter: asyncio.Future[None] = self.loop.create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                elif waiter.done() and not waiter.cancelled():
                    self._wake_one()  # pass on the turn this cancelled waiter was given
                raise
            now = self.loop.time()

    async def _connect(self) -> Connection:
        origin = self.origin
        conn = Connection(self)
        try:
            async with asyncio.timeout(self.connect_timeout):
                # uvloop may resolve create_connection before it calls connection_made: take the
                # transport from here rather than wait for the callback.
                conn.transport, _ = await self.loop.create_connection(
                    lambda: conn,
                    origin.host,
                    origin.port,
                    ssl=self._ssl,
                    server_hostname=origin.host if self._ssl else None,
                )
        except TimeoutError:
            conn.counted = False
            raise
        except OSError as exc:
            conn.counted = False
            raise ConnectFailed(exc.strerror or str(exc)) from exc
        return conn

    def release(self, conn: Connection) -> None:
        """Take back a connection whose exchange ended: keep it if its response was whole, else close it."""
        conn.active = False
        if conn.complete and conn.keep_alive and not conn.closed and not conn.chunks:
            conn.idle_since = self.loop.time()
            self._idle.append(conn)
            self._wake_one()
        else:
            conn.close()

    def forget(self, conn: Connection) -> None:
        """Count a closed connection out of the pool (idempotent)."""
        if conn.counted:
            conn.counted = False
            self.open -= 1
            if conn in self._idle:
                self._idle.remove(conn)
            self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def close(self) -> None:
        """Close the idle connections; busy ones close when released."""
        while self._idle:
            self._idle.pop().close()


class Response:
    """A response whose header block has arrived; the body is read with ``read`` or ``iter_chunks``.

    Call ``release`` when done: the connection goes back to the pool if the body was read to its end,
    and is closed otherwise.
    """

    def __init__(self, conn: Connection, idle_timeout: float | None, deadline: float | None) -> None:
        self._conn = conn
        self.status = conn.status
        self.headers = conn.headers
        self._idle_timeout = idle_timeout
        self._deadline = deadline
        self._timer: asyncio.TimerHandle | None = None
        self._released = False

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        """Yield the body as it arrives: all bytes buffered at each wake-up, decoded if compressed.

        Raises:
            TimeoutError: no bytes for ``idle_timeout`` seconds, or the deadline passed.
            TruncatedBody: the connection ended inside the body.
        """
        conn = self._conn
        decoder = _decoder(self.headers.get("content-encoding", ""))
        self._arm()
        try:
            while True:
                if conn.chunks:
                    data = conn.take()
                    if decoder is not None:
                        data = decoder.decompress(data)
                    if data:
                        yield data
                    continue
                if conn.complete:
                    break
                await conn.wait()
            if decoder is not None:
                tail = decoder.flush()
                if tail:
                    yield tail
        finally:
            self._disarm()

    async def read(self) -> bytes:
        """Read the rest of the body."""
        conn = self._conn
        if conn.complete and "content-encoding" not in self.headers:
            # The usual case for an answer that is not streamed: the whole body came with the head,
            # in the same read. No body iterator and no timer for what is already here.
            return conn.take() if conn.chunks else b""
        parts = [chunk async for chunk in self.iter_chunks()]
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def release(self) -> None:
        """Give the connection back (or close it, if the body was not read to its end)."""
        if not self._released:
            self._released = True
            self._disarm()
            self._conn.pool.release(self._conn)

    def _arm(self) -> None:
        if self._idle_timeout is None and self._deadline is None:
            return
        self._conn.last_read = self._conn.pool.loop.time()
        self._timer = self._conn.pool.loop.call_at(self._due(), self._check)

    def _due(self) -> float:
        due = self._deadline if self._deadline is not None else float("inf")
        if self._idle_timeout is not None:
            due = min(due, self._conn.last_read + self._idle_timeout)
        return due

    def _check(self) -> None:
        # One timer per response, moved on only when it fires: cheaper than re-arming on every read.
        due = self._due()
        if self._conn.pool.loop.time() >= due:
            self._timer = None
            self._conn.fail(TimeoutError("no data from the origin within the timeout"))
        else:
            self._timer = self._conn.pool.loop.call_at(due, self._check)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _decoder(encoding: str) -> zlib._Decompress | None:
    # No Accept-Encoding is sent, so origins answer uncompressed; these cover one that compresses anyway.
    encoding = encoding.strip().lower()
    if encoding in ("identity", ""):
        return None
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj()
    raise BadResponse(f"unsupported content-encoding {encoding!r}")


def header_lines(headers: Mapping[str, str]) -> str:
    """Serialise header fields, one ``name: value`` line each, CRLF-terminated.

    Raises:
        InvalidURL: a name or value holds a line break (header injection).
    """
    text = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    if _BREAK.search("".join(f"{name}{value}" for name, value in headers.items())):
        raise InvalidURL("a line break in a header name or value")
    return text


def request_head(
    method: str, target: str, origin: Origin, fixed: str, extra: Mapping[str, str] | None, length: int | None
) -> bytes:
    """Serialise a request line and header block.

    Args:
        method: HTTP method.
        target: Path and query; characters outside printable ASCII are percent-encoded.
        origin: The origin (its Host header).
        fixed: Header lines sent with every request, from ``header_lines``.
        extra: This request's own headers.
        length: Body length, or None for no body.
    """
    if _UNSAFE_TARGET.search(target):
        target = quote(target, safe="/:?#[]@!$&'()*+,;=%~")
    head = f"{method} {target} HTTP/1.1\r\nhost: {origin.host_header}\r\n{fixed}"
    if extra:
        head += header_lines(extra)
    if length is not None:
        head += f"content-length: {length}\r\n"
    return (head + "\r\n").encode("utf-8")
