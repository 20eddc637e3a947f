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
        return max(0.0, self.deadline - time.monotonic())


class Backend(Protocol):
    """Something that answers chat, completion and embedding requests."""

    async def chat(self, request: ChatRequest, ctx: CallContext) -> ChatResponse:
        """Answer a chat request in one piece."""
        ...

    def stream(self, request: ChatRequest, ctx: CallContext) -> AsyncIterator[ChatChunk]:
        """Answer a chat request as chunks; the last chunk carries usage."""
        ...

    async def complete(self, request: CompletionRequest, ctx: CallContext) -> CompletionResponse:
        """Answer a text-completion request."""
        ...

    async def embed(self, request: EmbedRequest, ctx: CallContext) -> EmbedResponse:
        """Embed texts."""
        ...
