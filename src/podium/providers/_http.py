"""Upstream HTTP plumbing shared by every HTTP provider.

One pooled HTTP/1.1 client per provider (``_h1``), stream framing decoders (SSE and NDJSON), and the mapping
of HTTP statuses and transport failures onto ``podium.errors``.
"""

from __future__ import annotations

import asyncio
import email.utils
import re
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import msgspec

from podium._timeouts import within
from podium.errors import (
    ConfigError,
    ContextLengthExceeded,
    MalformedResponse,
    ProviderAuthError,
    ProviderBadRequest,
    ProviderError,
    ProviderNotFound,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
)
from podium.providers._h1 import (
    BadResponse,
    ConnectFailed,
    Connection,
    ConnectionClosed,
    InvalidURL,
    Origin,
    Pool,
    Response,
    TruncatedBody,
    header_lines,
    request_head,
    split_url,
)

_RATE_LIMIT_PREFIXES = ("x-ratelimit-", "anthropic-ratelimit-", "ratelimit-")
_CONTEXT_PATTERNS = re.compile(
    r"context[_ ]length|context window|maximum context|prompt is too long|too many tokens|"
    r"input is too long|exceeds the maximum number of tokens|input token count",
    re.IGNORECASE,
)


@dataclass(slots=True)
class RawResponse:
    """An upstream answer read in full."""

    status: int
    headers: Mapping[str, str]
    body: bytes


@dataclass(slots=True)
class SSEEvent:
    """One server-sent event."""

    event: str
    data: str


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Return seconds to wait from ``retry-after-ms`` / ``retry-after`` (seconds or HTTP date)."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def rate_limit_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Return the provider's rate-limit headers (lower-cased names)."""
    return {k.lower(): v for k, v in headers.items() if k.lower().startswith(_RATE_LIMIT_PREFIXES)}


def error_for_status(
    provider: str,
    status: int,
    headers: Mapping[str, str],
    message: str,
    *,
    code: str | None = None,
    kind: str | None = None,
) -> ProviderError:
    """Map an upstream HTTP error onto the podium error tree.

    Args:
        provider: Provider name, for the message and the error's attributes.
        status: Upstream HTTP status.
        headers: Upstream response headers (lower-case names).
        message: The provider's own error message.
        code: The provider's error code, when it gave one.
        kind: The provider's error type (``overloaded_error``, ``RESOURCE_EXHAUSTED``, ...).
    """
    text = f"{provider}: {message}" if message else f"{provider}: upstream answered HTTP {status}"
    hint = " ".join(x for x in (code, kind, message) if x)
    if status == 429 or (kind or "").upper() == "RESOURCE_EXHAUSTED":
        return ProviderRateLimited(
            text,
            provider=provider,
            upstream_status=status,
            retry_after=parse_retry_after(headers),
            rate_limit_headers=rate_limit_headers(headers),
        )
    if status in (401, 403):
        return ProviderAuthError(
            f"{text} (check this provider's API key)", provider=provider, upstream_status=status
        )
    if status == 404:
        return ProviderNotFound(text, provider=provider, upstream_status=status)
    if status == 408:
        return ProviderTimeout(text, provider=provider, upstream_status=status)
    if status in (400, 413, 422) and _CONTEXT_PATTERNS.search(hint):
        return ContextLengthExceeded(text, provider=provider, upstream_status=status)
    if 400 <= status < 500:
        return ProviderBadRequest(text, provider=provider, upstream_status=status)
    code_name = "provider_overloaded" if status == 529 or kind == "overloaded_error" else None
    return ProviderUnavailable(text, provider=provider, upstream_status=status, code=code_name)


def transport_error(provider: str, exc: BaseException) -> ProviderError:
    """Map a transport failure (timeout, refused, reset, truncated) onto the podium error tree."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, TimeoutError):
        return ProviderTimeout(f"{provider}: no answer within the timeout", provider=provider)
    if isinstance(exc, ConnectFailed):
        return ProviderUnavailable(
            f"{provider}: cannot connect ({exc})", provider=provider, code="connection_failed"
        )
    if isinstance(exc, TruncatedBody):
        return MalformedResponse(f"{provider}: response body was truncated ({exc})", provider=provider)
    if isinstance(exc, BadResponse):
        return MalformedResponse(f"{provider}: {exc}", provider=provider)
    if isinstance(exc, OSError):  # resets, aborts and other socket errors (ConnectionError included)
        return ProviderUnavailable(
            f"{provider}: connection lost ({exc.__class__.__name__})",
            provider=provider,
            code="connection_reset",
        )
    return ProviderUnavailable(f"{provider}: transport failure ({exc!r})", provider=provider)


class HttpClient:
    """A pooled HTTP/1.1 client for one provider, created lazily inside the running event loop.

    Args:
        provider: Provider name (errors name it).
        base_url: Prefix of every request path.
        headers: Headers sent with every request (authentication, versions, custom headers).
        timeout: Seconds allowed for a whole non-streamed request, and between two stream reads.
        connect_timeout: Seconds allowed to open a connection.
        max_connections: Pool size (per origin).
    """

    def __init__(
        self,
        provider: str,
        base_url: str,
        headers: Mapping[str, str],
        *,
        timeout: float,
        connect_timeout: float,
        max_connections: int,
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.headers = dict(headers)
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.max_connections = max_connections
        self._pools: dict[tuple[str, str, int], Pool] = {}
        self._fixed: str | None = None
        self._targets: dict[tuple[str, str], tuple[Origin, str]] = {}

    def url(self, path: str) -> str:
        """Join a path (or take an absolute URL as is)."""
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}" if path else self.base_url

    def _target(self, path: str, params: Mapping[str, str] | None) -> tuple[Origin, str]:
        # Paths repeat (one per endpoint and model), so their parse is kept; queries vary and are not.
        if params:
            return self._split(path, params)
        key = (self.base_url, path)
        found = self._targets.get(key)
        if found is None:
            found = self._split(path, None)
            if len(self._targets) < 1024:
                self._targets[key] = found
        return found

    def _split(self, path: str, params: Mapping[str, str] | None) -> tuple[Origin, str]:
        try:
            return split_url(self.url(path), params)
        except InvalidURL as exc:
            raise ConfigError(f"{self.provider}: invalid base URL {self.url(path)!r} ({exc})") from exc

    def _pool(self, origin: Origin) -> Pool:
        pool = self._pools.get(origin.key)
        if pool is None or pool.loop is not asyncio.get_running_loop():
            pool = self._pools[origin.key] = Pool(origin, self.max_connections, self.connect_timeout)
        return pool

    def _head(
        self, method: str, origin: Origin, target: str, extra: Mapping[str, str] | None, length: int | None
    ) -> bytes:
        fixed = self._fixed
        if fixed is None:
            try:
                fixed = self._fixed = header_lines(self.headers)
            except InvalidURL as exc:
                raise ConfigError(f"{self.provider}: {exc}") from exc
        try:
            return request_head(method, target, origin, fixed, extra, length)
        except InvalidURL as exc:
            raise ConfigError(f"{self.provider}: {exc}") from exc

    async def _exchange(
        self,
        method: str,
        path: str,
        body: Any,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
    ) -> Connection:
        """Send one request and return its connection once the response's header block arrived."""
        data = msgspec.json.encode(body) if body is not None else None
        if data is not None:
            headers = {"content-type": "application/json", **headers} if headers else _JSON
        origin, target = self._target(path, params)
        head = self._head(method, origin, target, headers, len(data) if data is not None else None)
        pool = self._pool(origin)
        fresh = False
        while True:
            conn = await pool.acquire(fresh)
            conn.send(head, data)
            try:
                while not conn.headers_done:
                    await conn.wait()
            except ConnectionClosed:
                # An idle connection the origin closed as we reused it: nothing was processed, so the
                # request goes again, once, on a new connection.
                if conn.reused and not conn.got_bytes and not fresh:
                    fresh = True
                    continue
                raise
            except BaseException:
                conn.close()
                raise
            return conn

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        deadline_left: float | None = None,
    ) -> RawResponse:
        """Send one request and read the whole answer.

        Raises:
            ProviderError: timeout, connection failure or truncated body (HTTP errors are returned).
        """
        total = self.timeout if deadline_left is None else min(self.timeout, deadline_left)
        try:
            return await within(self._fetch(method, path, body, params, headers), total)
        except (ConnectionError, OSError, TimeoutError) as exc:
            raise transport_error(self.provider, exc) from exc

    async def _fetch(
        self,
        method: str,
        path: str,
        body: Any,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
    ) -> RawResponse:
        conn = await self._exchange(method, path, body, params, headers)
        resp = Response(conn, None, None)
        try:
            raw = await resp.read()
        finally:
            resp.release()
        return RawResponse(resp.status, resp.headers, raw)

    async def open_stream(
        self,
        path: str,
        *,
        body: Any,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        deadline_left: float | None = None,
    ) -> Response:
        """POST and return the response once its headers arrived; the caller must ``release`` it.

        The body is then read with ``timeout`` allowed between two reads (an idle timeout), bounded by
        the request deadline.
        """
        loop = asyncio.get_running_loop()
        deadline = None if deadline_left is None else loop.time() + deadline_left
        wait = self.timeout if deadline_left is None else min(self.timeout, deadline_left)
        try:
            conn = await within(self._exchange("POST", path, body, params, headers), wait)
            return Response(conn, self.timeout, deadline)
        except (ConnectionError, OSError, TimeoutError) as exc:
            raise transport_error(self.provider, exc) from exc

    async def aclose(self) -> None:
        """Close the pools' idle connections."""
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()


_JSON: Final = {"content-type": "application/json"}


_LINE_END = re.compile("\r\n|\r|\n")


async def line_batches(resp: Response, provider: str) -> AsyncIterator[list[str]]:
    """Yield the complete lines of each network read (LF, CRLF and CR line ends), ends stripped.

    One item per read rather than per line: an SSE event is two lines, and every generator step costs
    on a path that runs for each chunk of each stream.
    """
    buf = ""
    pending_cr = False
    decoder = _utf8_decoder()
    try:
        async for raw in resp.iter_chunks():
            text = decoder.decode(raw)
            if pending_cr and text.startswith("\n"):
                text = text[1:]
            pending_cr = text.endswith("\r")
            buf += text
            # Only CR and LF end lines (str.splitlines would also split at U+2028, which JSON allows
            # unescaped inside a string); the last piece is an unfinished line, or "". Without a CR,
            # str.split does what the regular expression would, several times faster.
            if "\r" in buf:
                lines = _LINE_END.split(buf)
            elif "\n" in buf:
                lines = buf.split("\n")
            else:
                continue
            buf = lines.pop()
            yield lines
    except (ConnectionError, OSError, TimeoutError) as exc:
        raise transport_error(provider, exc) from exc
    buf += decoder.decode(b"", final=True)
    if buf:
        yield [buf]


class SSEDecoder:
    """Decodes the lines of a ``text/event-stream`` body into events, across network reads.

    :meth:`events` is a generator that yields each event as soon as its blank line is reached, so a
    reader can act on the first event of a read (the time to the first token) before the rest of
    that read is decoded: a fast upstream, or the benchmark's, sends a whole answer in one read.
    Comments and ``id``/``retry`` fields are ignored.
    """

    __slots__ = ("_data", "_event")

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []

    def events(self, lines: Iterable[str]) -> Iterator[SSEEvent]:
        """The events ``lines`` complete (lines of one read, ends stripped), one at a time."""
        data = self._data
        for line in lines:
            # "data: ..." is nearly every non-blank line of a stream: tested first, without partition.
            if line.startswith("data: "):
                data.append(line[6:])
            elif not line:
                event, self._event = self._event, ""
                if data:
                    done, data = data, []
                    self._data = data
                    yield SSEEvent(event or "message", "\n".join(done))
            elif line[0] != ":":  # a line starting with a colon is a comment
                name, _, value = line.partition(":")
                if value.startswith(" "):
                    value = value[1:]
                if name == "data":
                    data.append(value)
                elif name == "event":
                    self._event = value

    def end(self) -> list[SSEEvent]:
        """The event a body ended in without its blank line (none, or one): the end of the body ends it."""
        return list(self.events(("",)))


async def ndjson_batches(resp: Response, provider: str) -> AsyncIterator[list[str]]:
    """The non-empty lines of an NDJSON body, as the lists each network read completes."""
    async for lines in line_batches(resp, provider):
        kept = [line for line in lines if line.strip()]
        if kept:
            yield kept


def _utf8_decoder() -> Any:
    import codecs

    return codecs.getincrementaldecoder("utf-8")(errors="replace")
