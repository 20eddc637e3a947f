"""``Recorded``: the request-path layer that keeps the request log, the audit trail and the history.

It wraps the tenant's router and, when a request ends (answered, failed, or a stream finished or cut
off by the caller), hands the records to the background ``RecordWriter``. Nothing here waits on the
database: ``submit`` only appends to the writer's bounded queue. Only when that queue is past its
high-water mark with the database reachable (the process is saturated and the writer behind) does a
new request wait, before it starts, for the writer to catch up: a saturated gateway slows down rather
than losing its request log and audit trail.

What is kept per request: a ``RequestRecord`` (tenant, provider, model, task type, tokens, cost,
latency, status, error class, request id, timestamps), an audit event with the same metadata (bodies
only when ``store_bodies`` is on), and, when the request names a user and history is enabled, the new
messages of the conversation and the answer.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime
from typing import Any, TypeVar

import msgspec

from podium._actor import current_actor
from podium.backend import Backend, CallContext
from podium.errors import AllProvidersFailed, PodiumError
from podium.limits.guarded import SETTLEMENT
from podium.storage.audit import request_event
from podium.storage.conversations import message_record
from podium.storage.records import RequestRecord
from podium.storage.writer import RecordWriter
from podium.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    CompletionRequest,
    CompletionResponse,
    EmbedRequest,
    EmbedResponse,
    Message,
    Usage,
)

_TO_BUILTINS = msgspec.to_builtins
_R = TypeVar("_R", CompletionResponse, EmbedResponse)


class Recorded:
    """A ``Backend`` that records every request it passes to ``inner``.

    Args:
        inner: The backend that answers (the tenant's router).
        writer: Where records go (off the request path).
        store_bodies: Keep prompts and answers in the request log and audit trail.
        store_history: Keep the conversation history of requests that name a user.
        record_requests: Keep the request-log row and the audit event of each request; False keeps
            only the history (the orchestrator leaves this layer out when it keeps neither).
    """

    def __init__(
        self,
        inner: Backend,
        writer: RecordWriter,
        *,
        store_bodies: bool = False,
        store_history: bool = True,
        record_requests: bool = True,
    ) -> None:
        self.inner = inner
        self.writer = writer
        # Bodies are kept only in the request's records: with none kept, none is converted for them.
        self.store_bodies = store_bodies and record_requests
        self.store_history = store_history
        self.record_requests = record_requests

    async def chat(self, request: ChatRequest, ctx: CallContext) -> ChatResponse:
        """Answer through ``inner`` and record the outcome."""
        if self.writer.behind():
            await self.writer.room()
        started, t0 = datetime.now(UTC), time.perf_counter()
        try:
            response = await self.inner.chat(request, ctx)
        except PodiumError as exc:
            self._record(ctx, "chat", request, started, t0, error=exc)
            raise
        answer = Message(role="assistant", content=response.content, tool_calls=response.tool_calls or None)
        self._record(
            ctx,
            "chat",
            request,
            started,
            t0,
            provider=response.provider,
            model=response.model,
            usage=response.usage,
            cost=response.cost,
            extra=_attempts(response.metadata),
            response_body=_TO_BUILTINS(response) if self.store_bodies else None,
        )
        self._history(ctx, request, answer)
        return response

    async def stream(self, request: ChatRequest, ctx: CallContext) -> AsyncIterator[list[ChatChunk]]:
        """Stream through ``inner``; the record is written when the stream ends, however it ends."""
        if self.writer.behind():
            await self.writer.room()
        started, t0 = datetime.now(UTC), time.perf_counter()
        usage: Usage | None = None
        provider = model = ""
        text: list[str] = []
        status, error = "aborted", None
        cost: float | None = None
        agen = self.inner.stream(request, ctx)
        try:
            async for batch in agen:
                for chunk in batch:
                    provider, model = chunk.provider or provider, chunk.model or model
                    if chunk.usage is not None:
                        usage = chunk.usage
                    if chunk.cost is not None:
                        cost = chunk.cost
                    if chunk.delta:
                        text.append(chunk.delta)
                yield batch
            status = "ok"
        except PodiumError as exc:
            status, error = "error", exc
            raise
        finally:
            # Runs also when the caller stops reading (GeneratorExit) or is cancelled: the layers below
            # are closed first, so an aborted stream is recorded with what it was charged.
            await agen.aclose()  # type: ignore[attr-defined]
            settlement = ctx.metadata.get(SETTLEMENT)
            if cost is None and settlement is not None:
                cost = settlement.cost
            self._record(
                ctx,
                "chat",
                request,
                started,
                t0,
                provider=provider,
                model=model,
                usage=usage,
                cost=cost,
                error=error,
                status=status,
                response_body={"content": "".join(text)} if self.store_bodies else None,
            )
            if status == "ok":
                self._history(ctx, request, Message(role="assistant", content="".join(text)))

    async def complete(self, request: CompletionRequest, ctx: CallContext) -> CompletionResponse:
        """Complete through ``inner`` and record the outcome."""
        if self.writer.behind():
            await self.writer.room()
        return await self._once("completion", request, ctx, self.inner.complete(request, ctx))

    async def embed(self, request: EmbedRequest, ctx: CallContext) -> EmbedResponse:
        """Embed through ``inner`` and record the outcome (vectors are never stored)."""
        if self.writer.behind():
            await self.writer.room()
        return await self._once("embedding", request, ctx, self.inner.embed(request, ctx))

    async def _once(
        self,
        task_type: str,
        request: CompletionRequest | EmbedRequest,
        ctx: CallContext,
        call: Awaitable[_R],
    ) -> _R:
        started, t0 = datetime.now(UTC), time.perf_counter()
        try:
            response = await call
        except PodiumError as exc:
            self._record(ctx, task_type, request, started, t0, error=exc)
            raise
        text = getattr(response, "text", None)
        self._record(
            ctx,
            task_type,
            request,
            started,
            t0,
            provider=response.provider,
            model=response.model,
            usage=response.usage,
            cost=response.cost,
            response_body={"text": text} if self.store_bodies and text is not None else None,
        )
        return response

    # ------------------------------------------------------------------ records

    def _record(
        self,
        ctx: CallContext,
        task_type: str,
        request: ChatRequest | CompletionRequest | EmbedRequest,
        started: datetime,
        t0: float,
        *,
        provider: str | None = None,
        model: str | None = None,
        usage: Usage | None = None,
        cost: float | None = None,
        error: PodiumError | None = None,
        status: str | None = None,
        extra: dict[str, Any] | None = None,
        response_body: dict[str, Any] | None = None,
    ) -> None:
        if not self.record_requests:
            return
        # Keys under "podium." are the layers' own objects (tickets, settlements), not labels.
        metadata: dict[str, Any] = {
            k: v for k, v in ctx.metadata.items() if k != "task_type" and not k.startswith("podium.")
        }
        metadata.update(extra or {})
        if error is not None:
            provider = provider or getattr(error, "provider", None) or _last_provider(error)
            metadata["error"] = error.message
        usage = usage or Usage()
        record = RequestRecord(
            tenant=ctx.tenant,
            request_id=ctx.request_id,
            provider=provider or None,
            model=model or request.model,
            task_type=str(ctx.metadata.get("task_type") or task_type),
            user_id=ctx.user_id,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cost=cost or 0.0,
            latency_ms=(time.perf_counter() - t0) * 1000,
            status=status or ("error" if error is not None else "ok"),
            error_class=type(error).__name__ if error is not None else None,
            started_at=started,
            finished_at=datetime.now(UTC),
            metadata=metadata,
            request_body=_TO_BUILTINS(request) if self.store_bodies else None,
            response_body=response_body,
        )
        self.writer.submit(record)
        self.writer.submit(request_event(record, actor=current_actor.get(), include_bodies=self.store_bodies))

    def _history(self, ctx: CallContext, request: ChatRequest, answer: Message) -> None:
        if not self.store_history or ctx.user_id is None:
            return
        given = ctx.metadata.get("conversation_id")
        conversation = str(given) if given else ctx.request_id
        # Continuing a conversation, the caller resends its earlier turns: keep only the new ones,
        # those after the last assistant message.
        messages = request.messages
        if given:
            last = max((i for i, m in enumerate(messages) if m.role == "assistant"), default=-1)
            messages = messages[last + 1 :]
        for message in [*messages, answer]:
            self.writer.submit(message_record(conversation, ctx.tenant, ctx.user_id, _TO_BUILTINS(message)))


def _attempts(metadata: dict[str, Any]) -> dict[str, Any]:
    failed = metadata.get("failed_attempts")
    return {"failed_attempts": failed} if failed else {}


def _last_provider(error: PodiumError) -> str | None:
    if isinstance(error, AllProvidersFailed) and error.attempts:
        return error.attempts[-1].provider
    return None
