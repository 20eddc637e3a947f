"""Upstream HTTP plumbing shared by every HTTP provider.

One pooled ``aiohttp`` session per provider, stream framing decoders (SSE and NDJSON), and the mapping
of HTTP statuses and transport failures onto ``podium.errors``.
"""

from __future__ import annotations

import asyncio
import email.utils
import re
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import msgspec

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
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return ProviderTimeout(f"{provider}: no answer within the timeout", provider=provider)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ProviderUnavailable(
            f"{provider}: cannot connect ({exc.os_error.strerror or exc})",
            provider=provider,
            code="connection_failed",
        )
    if isinstance(exc, aiohttp.ClientPayloadError):
        return MalformedResponse(f"{provider}: response body was truncated ({exc})", provider=provider)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError | ConnectionError):
        return ProviderUnavailable(
            f"{provider}: connection lost ({exc.__class__.__name__})",
            provider=provider,
            code="connection_reset",
        )
    return ProviderUnavailable(f"{provider}: transport failure ({exc!r})", provider=provider)


class HttpClient:
    """A pooled HTTP client for one provider, created lazily inside the running event loop.

    Args:
        provider: Provider name (errors name it).
        base_url: Prefix of every request path.
        headers: Headers sent with every request (authentication, versions, custom headers).
        timeout: Seconds allowed for a whole non-streamed request, and between two stream reads.
        connect_timeout: Seconds allowed to open a connection.
        max_connections: Pool size.
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
        self._session: aiohttp.ClientSession | None = None

    def url(self, path: str) -> str:
        """Join a path (or take an absolute URL as is)."""
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}" if path else self.base_url

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.max_connections, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers=self.headers,
                skip_auto_headers=("User-Agent",),
                auto_decompress=True,
            )
        return self._session

    def _timeout(
        self, total: float | None, read: float | None, deadline_left: float | None
    ) -> aiohttp.ClientTimeout:
        if deadline_left is not None:
            total = deadline_left if total is None else min(total, deadline_left)
        return aiohttp.ClientTimeout(total=total, sock_connect=self.connect_timeout, sock_read=read)

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
        data = msgspec.json.encode(body) if body is not None else None
        hdrs = {"content-type": "application/json", **(headers or {})} if data is not None else headers
        try:
            async with self._get_session().request(
                method,
                self.url(path),
                data=data,
                params=params,
                headers=hdrs,
                timeout=self._timeout(self.timeout, None, deadline_left),
            ) as resp:
                raw = await resp.read()
                return RawResponse(resp.status, _lower(resp.headers), raw)
        except ValueError as exc:  # aiohttp raises InvalidURL (a ValueError) for a bad base_url
            if isinstance(exc, aiohttp.InvalidURL):
                raise ConfigError(f"{self.provider}: invalid base URL {self.url(path)!r}") from exc
            raise
        except (TimeoutError, aiohttp.ClientError, ConnectionError) as exc:
            raise transport_error(self.provider, exc) from exc

    async def open_stream(
        self,
        path: str,
        *,
        body: Any,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        deadline_left: float | None = None,
    ) -> aiohttp.ClientResponse:
        """POST and return the response once its headers arrived; the caller must release it.

        The body is then read with ``timeout`` allowed between two reads (an idle timeout), bounded by
        the request deadline.
        """
        data = msgspec.json.encode(body)
        hdrs = {"content-type": "application/json", **(headers or {})}
        session = self._get_session()
        try:
            return await session.post(
                self.url(path),
                data=data,
                params=params,
                headers=hdrs,
                timeout=self._timeout(None, self.timeout, deadline_left),
            )
        except (TimeoutError, aiohttp.ClientError, ConnectionError) as exc:
            raise transport_error(self.provider, exc) from exc

    async def aclose(self) -> None:
        """Close the pool."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


_LINE_END = re.compile("\r\n|\r|\n")


async def _line_batches(resp: aiohttp.ClientResponse, provider: str) -> AsyncIterator[list[str]]:
    """Yield the complete lines of each network read (LF, CRLF and CR line ends), ends stripped.

    One item per read rather than per line: an SSE event is two lines, and every generator step costs
    on a path that runs for each chunk of each stream.
    """
    buf = ""
    pending_cr = False
    decoder = _utf8_decoder()
    try:
        async for raw in resp.content.iter_any():
            text = decoder.decode(raw)
            if pending_cr and text.startswith("\n"):
                text = text[1:]
            pending_cr = text.endswith("\r")
            buf += text
            if "\n" not in buf and "\r" not in buf:
                continue
            # Only CR and LF end lines (str.splitlines would also split at U+2028, which JSON allows
            # unescaped inside a string); the last piece is an unfinished line, or "".
            lines = _LINE_END.split(buf)
            buf = lines.pop()
            yield lines
    except (TimeoutError, aiohttp.ClientError, ConnectionError) as exc:
        raise transport_error(provider, exc) from exc
    buf += decoder.decode(b"", final=True)
    if buf:
        yield [buf]


async def iter_sse(resp: aiohttp.ClientResponse, provider: str) -> AsyncIterator[SSEEvent]:
    """Decode a ``text/event-stream`` body into events (comments and ``id``/``retry`` fields ignored)."""
    event = ""
    data: list[str] = []
    async for lines in _line_batches(resp, provider):
        for line in lines:
            if not line:
                if data:
                    yield SSEEvent(event or "message", "\n".join(data))
                event, data = "", []
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if name == "data":
                data.append(value)
            elif name == "event":
                event = value
    if data:
        yield SSEEvent(event or "message", "\n".join(data))


async def iter_ndjson(resp: aiohttp.ClientResponse, provider: str) -> AsyncIterator[str]:
    """Yield the non-empty lines of an NDJSON body."""
    async for lines in _line_batches(resp, provider):
        for line in lines:
            if line.strip():
                yield line


def _utf8_decoder() -> Any:
    import codecs

    return codecs.getincrementaldecoder("utf-8")(errors="replace")
