"""``Governed``: admits each request once, before routing, against the tenant's and key's limits and budgets.

It sits above the router; per-attempt work (the provider's own limits, cost from real usage, settling)
is done by ``Guarded`` around each provider. A request refused here never reaches a provider; one whose
every attempt failed gives its reservation back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from podium.backend import Backend, CallContext
from podium.limits.estimate import estimate
from podium.limits.guard import Guard, Ticket
from podium.limits.guarded import API_KEY_ID, TICKET
from podium.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    CompletionRequest,
    CompletionResponse,
    EmbedRequest,
    EmbedResponse,
)


class Governed:
    """A ``Backend`` that takes a ticket from the guard for every request it passes on.

    Args:
        inner: The tenant's router.
        guard: The governance guard.
    """

    def __init__(self, inner: Backend, guard: Guard) -> None:
        self.inner = inner
        self.guard = guard

    async def _admit(
        self, request: ChatRequest | CompletionRequest | EmbedRequest, ctx: CallContext
    ) -> Ticket:
        key_id = ctx.metadata.get(API_KEY_ID)
        ticket = await self.guard.admit(
            ctx.tenant, key_id if isinstance(key_id, str) else None, ctx.provider, estimate(request)
        )
        ctx.metadata[TICKET] = ticket
        return ticket

    async def chat(self, request: ChatRequest, ctx: CallContext) -> ChatResponse:
        """Admit, then answer; the reservation is returned if no provider answered."""
        ticket = await self._admit(request, ctx)
        try:
            return await self.inner.chat(request, ctx)
        except BaseException as exc:
            await self.guard.cancel(ticket, exc)  # does nothing once an attempt settled it
            raise

    async def stream(self, request: ChatRequest, ctx: CallContext) -> AsyncIterator[list[ChatChunk]]:
        """Admit, then stream; the reservation is returned if no provider streamed."""
        ticket = await self._admit(request, ctx)
        agen = self.inner.stream(request, ctx)
        try:
            async for batch in agen:
                yield batch
        except BaseException as exc:
            await self.guard.cancel(ticket, exc)
            raise
        finally:
            # Close the router's stream now (not at garbage collection), so an abandoned stream is
            # settled for what it received before anyone reads its cost.
            await agen.aclose()  # type: ignore[attr-defined]

    async def complete(self, request: CompletionRequest, ctx: CallContext) -> CompletionResponse:
        """Admit, then complete."""
        ticket = await self._admit(request, ctx)
        try:
            return await self.inner.complete(request, ctx)
        except BaseException as exc:
            await self.guard.cancel(ticket, exc)
            raise

    async def embed(self, request: EmbedRequest, ctx: CallContext) -> EmbedResponse:
        """Admit, then embed."""
        ticket = await self._admit(request, ctx)
        try:
            return await self.inner.embed(request, ctx)
        except BaseException as exc:
            await self.guard.cancel(ticket, exc)
            raise
