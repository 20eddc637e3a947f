"""The one interface every layer of the request path shares.

Provider adapters, the router, and every wrapper between them (limits, metering, caching, consensus)
implement ``Backend``, so they stack like middleware and each can be tested alone on a ``MockProvider``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from podium._ids import new_id
from podium.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    CompletionRequest,
    CompletionResponse,
    EmbedRequest,
    EmbedResponse,
)


@dataclass(slots=True)
class CallContext:
    """Per-request facts that travel down the stack beside the request.

    Attributes:
        tenant: The tenant the request is made for.
        request_id: Unique id of this request, also reported to callers.
        deadline: ``time.monotonic()`` value after which no upstream attempt may run (None: no deadline).
        user_id: The end user, when known.
        provider: Name of the one provider the caller asked for (None: let routing choose).
        metadata: Free-form labels (task type, API key id, ...).
    """

    tenant: str = "default"
    request_id: str = field(default_factory=new_id)
    deadline: float | None = None
    user_id: str | None = None
    provider: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def remaining(self) -> float | None:
        """Seconds left before the deadline (None when there is none; never negative)."""
        if self.deadline is None:
            return None
        left = self.deadline - time.monotonic()
        return left if left > 0.0 else 0.0  # not max(): see limits/bucket.py


class Backend(Protocol):
    """Something that answers chat, completion and embedding requests."""

    async def chat(self, request: ChatRequest, ctx: CallContext) -> ChatResponse:
        """Answer a chat request in one piece."""
        ...

    def stream(self, request: ChatRequest, ctx: CallContext) -> AsyncIterator[list[ChatChunk]]:
        """Answer a chat request as batches of chunks; the last chunk carries usage.

        A batch is the chunks that are in hand together (what one network read brought), never
        empty. Batches, not single chunks, so that every layer of the stack takes one step per read
        rather than one per chunk, and the server writes what arrived together in one write; a
        layer must not hold a batch back waiting for the next. ``flatten`` turns a stream into
        single chunks.
        """
        ...

    async def complete(self, request: CompletionRequest, ctx: CallContext) -> CompletionResponse:
        """Answer a text-completion request."""
        ...

    async def embed(self, request: EmbedRequest, ctx: CallContext) -> EmbedResponse:
        """Embed texts."""
        ...


async def flatten(batches: AsyncIterator[list[ChatChunk]]) -> AsyncIterator[ChatChunk]:
    """The chunks of a ``Backend.stream``, one at a time; closes the stream when abandoned."""
    try:
        async for batch in batches:
            for chunk in batch:
                yield chunk
    finally:
        close = getattr(batches, "aclose", None)
        if close is not None:
            await close()
