"""``Guarded``: a Backend wrapper that applies the guard around one provider's calls.

Put it directly around a provider (under the router), so every attempt is admitted against the
provider's own limits and costed from its real usage::

    guarded = Guarded(
        provider, guard, provider_name=provider.name, default_model=provider.config.default_model
    )

When the caller already admitted the request (``ctx.metadata[TICKET]`` holds a ``Ticket``), each attempt
only takes the provider's limits and settles that ticket on success; otherwise the wrapper admits and
settles a ticket of its own. The settlement is left in ``ctx.metadata[SETTLEMENT]`` (the only way to
read a stream's cost) and copied into ``response.cost``. A stream that is cut off, or abandoned by its
reader, is charged for what was received: its usage when the provider reported it, else its prompt
estimate plus the characters streamed.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol, TypeVar

from podium.backend import Backend, CallContext
from podium.limits.estimate import CHARS_PER_TOKEN, estimate
from podium.limits.guard import Guard, Permit, Settlement, Ticket
from podium.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    CompletionRequest,
    CompletionResponse,
    EmbedRequest,
    EmbedResponse,
    Usage,
)

TICKET = "podium.ticket"
SETTLEMENT = "podium.settlement"
API_KEY_ID = "api_key_id"


class _Costed(Protocol):
    usage: Usage
    model: str
    cost: float | None


R = TypeVar("R", bound=_Costed)


class Guarded:
    """Limits, budget and cost around one provider.

    Args:
        inner: The provider (or any Backend serving one provider).
        guard: The guard.
        provider_name: The provider's name (limits and prices are looked up by it).
        default_model: The model used when a request names none (prices the reservation).
    """

    def __init__(
        self, inner: Backend, guard: Guard, *, provider_name: str, default_model: str | None
    ) -> None:
        self.inner = inner
        self.guard = guard
        self.provider_name = provider_name
        self.default_model = default_model

    async def _open(
        self, request: ChatRequest | CompletionRequest | EmbedRequest, ctx: CallContext
    ) -> tuple[Ticket, bool, Permit]:
        model = request.model or self.default_model
        ticket = ctx.metadata.get(TICKET)
        own = not isinstance(ticket, Ticket)
        if not isinstance(ticket, Ticket):
            key_id = ctx.metadata.get(API_KEY_ID)
            ticket = await self.guard.admit(
                ctx.tenant,
                key_id if isinstance(key_id, str) else None,
                self.provider_name,
                estimate(request, model),
            )
        try:
            permit = await self.guard.admit_provider(ticket, self.provider_name, model)
        except BaseException as exc:
            if own:
                await self.guard.cancel(ticket, exc)
            raise
        return ticket, own, permit

    async def _call(
        self,
        request: ChatRequest | CompletionRequest | EmbedRequest,
        ctx: CallContext,
        call: Callable[[], Awaitable[R]],
    ) -> R:
        ticket, own, permit = await self._open(request, ctx)
        try:
            result = await call()
        except BaseException as exc:
            await self.guard.release(permit)
            if own:
                await self.guard.cancel(ticket, exc)
            raise
        model = result.model or request.model or self.default_model or ""
        settlement = await self.guard.settle(ticket, result.usage, provider=self.provider_name, model=model)
        ctx.metadata[SETTLEMENT] = settlement
        result.cost = settlement.cost
        return result

    async def chat(self, request: ChatRequest, ctx: CallContext) -> ChatResponse:
        """Admit, answer, settle."""
        return await self._call(request, ctx, lambda: self.inner.chat(request, ctx))

    async def complete(self, request: CompletionRequest, ctx: CallContext) -> CompletionResponse:
        """Admit, complete, settle."""
        return await self._call(request, ctx, lambda: self.inner.complete(request, ctx))

    async def embed(self, request: EmbedRequest, ctx: CallContext) -> EmbedResponse:
        """Admit, embed, settle."""
        return await self._call(request, ctx, lambda: self.inner.embed(request, ctx))

    async def stream(self, request: ChatRequest, ctx: CallContext) -> AsyncIterator[list[ChatChunk]]:
        """Admit, stream, and settle when the stream ends, fails after its first chunk, or is abandoned."""
        ticket, own, permit = await self._open(request, ctx)
        usage: Usage | None = None
        model = request.model or self.default_model or ""
        received = 0
        error: BaseException | None = None
        settled = False
        # The closing chunk (finish reason or usage, no text) is held back until the stream ends, so
        # that it can carry the cost: callers read usage and cost from the last chunk.
        held: ChatChunk | None = None
        out: list[ChatChunk] = []
        try:
            async for batch in self.inner.stream(request, ctx):
                for chunk in batch:
                    received += len(chunk.delta) + len(chunk.reasoning or "")
                    if chunk.tool_calls:
                        received += sum(len(c.arguments) + len(c.name or "") for c in chunk.tool_calls)
                    model = chunk.model or model
                    if chunk.usage is not None:
                        usage = chunk.usage
                    if held is not None:
                        out.append(held)
                        held = None
                    if _closing(chunk):
                        held = chunk
                    else:
                        out.append(chunk)
                # After the usage chunk only the stream's end can come: what is in hand waits for it,
                # so that the answer's last batch carries the cost.
                if out and (held is None or held.usage is None):
                    yield out
                    out = []
            settled = True
            settlement = await self._settle_stream(ticket, ctx, usage, model, received)
            if held is not None:
                held.cost = settlement.cost
                out.append(held)
            if out:
                yield out
        except GeneratorExit:
            raise  # the reader stopped early: charged below for what it received
        except BaseException as exc:
            error = exc
            raise
        finally:
            if not settled:
                finish = self._finish(ticket, own, permit, ctx, usage, model, received, error)
                # Shielded: a cancelled reader must not leave the reservation and slots held.
                await asyncio.shield(asyncio.ensure_future(finish))

    async def _finish(
        self,
        ticket: Ticket,
        own: bool,
        permit: Permit,
        ctx: CallContext,
        usage: Usage | None,
        model: str,
        received: int,
        error: BaseException | None,
    ) -> None:
        if error is not None and usage is None and received == 0:
            await self.guard.release(permit)
            if own:
                await self.guard.cancel(ticket, error)
            return
        await self._settle_stream(ticket, ctx, usage, model, received)

    async def _settle_stream(
        self, ticket: Ticket, ctx: CallContext, usage: Usage | None, model: str, received: int
    ) -> Settlement:
        if usage is None:
            prompt = ticket.estimate.prompt_tokens
            completion = math.ceil(received / CHARS_PER_TOKEN)
            usage = Usage(
                prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
            )
        settlement: Settlement = await self.guard.settle(
            ticket,
            usage,
            provider=self.provider_name,
            model=model,
        )
        ctx.metadata[SETTLEMENT] = settlement
        return settlement


def _closing(chunk: ChatChunk) -> bool:
    """A chunk that only closes the stream: no text, no tool-call fragment, no reasoning."""
    return (chunk.finish_reason is not None or chunk.usage is not None) and not (
        chunk.delta or chunk.tool_calls or chunk.reasoning
    )
