"""Calling the orchestrator from a route, with the time spent upstream accounted for.

Streams are opened before the answer's head is sent: an upstream that fails before its first chunk
(rate limit, unknown model, outage) is then an ordinary HTTP error the caller's SDK understands, not
an error event inside a 200 stream.

Every generation answer (JSON or SSE) carries the ``x-ratelimit-*`` headers of the request's admission
ticket: routes add ``**calls.limit_headers(ctx)`` to the headers they answer with, after the call (or,
for streams, after ``open_stream``) so the ticket exists.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Protocol

from starlette.requests import Request

from podium.auth.principal import Principal
from podium.backend import CallContext
from podium.errors import PodiumError
from podium.limits.guard import Ticket
from podium.limits.guarded import API_KEY_ID, TICKET
from podium.server.deps import add_upstream_ms, state
from podium.server.errors import describe, error_body
from podium.server.http import request_id
from podium.types import ChatChunk, ChatRequest, ChatResponse


def context(request: Request, who: Principal, tenant: str, user: str | None) -> CallContext:
    """The call context of a request: tenant, request id, end user and the caller's key.

    The key id goes where governance looks for it, so per-key rate limits and budgets apply.
    """
    metadata = {API_KEY_ID: who.key_id} if who.key_id else {}
    return CallContext(tenant=tenant, request_id=request_id(request.scope), user_id=user, metadata=metadata)


def limit_headers(ctx: CallContext) -> dict[str, str]:
    """The ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}`` headers of the request's ticket.

    Empty when no podium limit applies to the request (nothing to report) or it was never admitted.
    """
    ticket = ctx.metadata.get(TICKET)
    return ticket.headers if isinstance(ticket, Ticket) else {}


async def chat(request: Request, req: ChatRequest, ctx: CallContext) -> ChatResponse:
    """Answer a chat; the provider's latency counts as upstream time."""
    resp = await state(request).orchestrator.chat_request(req, ctx)
    add_upstream_ms(request, resp.latency_ms)
    return resp


async def open_stream(
    request: Request, req: ChatRequest, ctx: CallContext
) -> tuple[list[ChatChunk], AsyncIterator[list[ChatChunk]]]:
    """Start a stream and wait for its first batch of chunks (errors before it raise here).

    The batch is empty when the stream ended without a chunk.
    """
    stream = state(request).orchestrator.stream_request(req, ctx)
    return await first_batch(request, stream), stream


async def first_batch(request: Request, stream: AsyncIterator[list[ChatChunk]]) -> list[ChatChunk]:
    """Wait for a stream's first batch, counting the wait as upstream time; close it on failure."""
    t0 = time.perf_counter()
    try:
        first: list[ChatChunk] = await anext(stream)
    except StopAsyncIteration:
        first = []
    except BaseException:
        await aclose(stream)
        raise
    add_upstream_ms(request, (time.perf_counter() - t0) * 1000)
    return first


async def aclose(stream: AsyncIterator[list[ChatChunk]]) -> None:
    """Close a stream (and with it the upstream connection) if it can be closed."""
    close = getattr(stream, "aclose", None)
    if close is not None:
        await close()


class SseEncoder(Protocol):
    """Turns canonical chunks into one API's server-sent events (OpenAI's, Anthropic's)."""

    def encode(self, chunk: ChatChunk) -> list[bytes]:
        """The events of one chunk."""
        ...

    def finish(self) -> bytes:
        """The events that end the stream."""
        ...

    def error(self, body: bytes) -> bytes:
        """An error event carrying ``body``."""
        ...


async def sse_events(
    first: list[ChatChunk],
    stream: AsyncIterator[list[ChatChunk]],
    encoder: SseEncoder,
    *,
    anthropic: bool,
    opening: bytes = b"",
) -> AsyncIterator[bytes]:
    """A stream's SSE body: ``opening``, every batch's events, then the end.

    The events of one batch leave as one piece (one write to the socket, not one per chunk). A
    failure after the head was sent becomes an error event (the status is already 200). The upstream
    stream is always closed.
    """
    try:
        events = [opening] if opening else []
        for chunk in first:
            events += encoder.encode(chunk)
        yield b"".join(events)  # even when empty: SSEResponse listens for a disconnect after it
        async for batch in stream:
            events = []
            for chunk in batch:
                events += encoder.encode(chunk)
            if events:
                yield b"".join(events)
        yield encoder.finish()
    except PodiumError as exc:
        yield encoder.error(error_body(describe(exc), anthropic=anthropic))
    finally:
        await aclose(stream)
