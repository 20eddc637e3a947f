"""Generation under ``/api/ai`` (the seed's REST API): podium's own request and answer shapes.

Bodies are the keyword arguments of ``Orchestrator.chat`` / ``complete`` / ``embed`` (snake_case or
camelCase, optionally nested under ``options`` as in the seed), so ``provider``, ``timeout`` and
``conversation_id`` work here; answers are podium's canonical responses (``content``, ``usage``,
``cost``, ``provider``, ``latency_ms``, ``metadata`` ...). ``stream: true`` on chat answers SSE events
whose data are canonical chunks, then ``[DONE]``. Answers carry ``x-podium-provider`` and the request's
``x-ratelimit-*`` headers.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, TypeVar

import msgspec
from msgspec import Meta
from pydantic.alias_generators import to_snake
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from podium.auth.principal import Principal
from podium.backend import CallContext
from podium.errors import PodiumError, RequestError
from podium.orchestrator import Orchestrator
from podium.server import calls
from podium.server.deps import add_upstream_ms, body_access, state
from podium.server.errors import describe, error_body
from podium.server.http import JSONBytes, SSEResponse
from podium.types import ChatChunk, CompletionRequest, EmbedRequest, Message, ResponseFormat, Tool, ToolChoice

T = TypeVar("T", bound=msgspec.Struct)
Positive = Annotated[float, Meta(gt=0)]


class _Common(msgspec.Struct, kw_only=True):
    model: str | None = None
    provider: str | None = None
    user: str | None = None
    timeout: Positive | None = None


class ChatBody(_Common, kw_only=True):
    """``POST /api/ai/chat/completions`` body."""

    messages: str | Annotated[list[Message], Meta(min_length=1)]
    temperature: Annotated[float, Meta(ge=0, le=2)] | None = None
    top_p: Annotated[float, Meta(ge=0, le=1)] | None = None
    max_tokens: Annotated[int, Meta(ge=1)] | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    metadata: dict[str, str] | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    conversation_id: str | None = None
    stream: bool = False


class CompletionBody(_Common, kw_only=True):
    """``POST /api/ai/completions`` body."""

    prompt: Annotated[str, Meta(min_length=1)]
    max_tokens: Annotated[int, Meta(ge=1)] | None = None
    temperature: Annotated[float, Meta(ge=0, le=2)] | None = None
    top_p: Annotated[float, Meta(ge=0, le=1)] | None = None
    stop: str | list[str] | None = None
    seed: int | None = None


class EmbeddingBody(_Common, kw_only=True):
    """``POST /api/ai/embeddings`` body."""

    input: str | Annotated[list[str], Meta(min_length=1)]
    dimensions: Annotated[int, Meta(ge=1)] | None = None


def _parse(body: dict[str, Any], into: type[T]) -> tuple[T, dict[str, Any]]:
    """Validate the known options (any spelling) into ``into``; the rest go to the provider."""
    options = body.pop("options", None) or {}
    if not isinstance(options, dict):
        raise RequestError("options must be an object", param="options")
    merged = {to_snake(k): v for k, v in {**body, **options}.items()}
    merged.pop("tenant", None)  # already applied by the access check
    fields = set(into.__struct_fields__)
    known = {k: v for k, v in merged.items() if k in fields}
    unknown = {k: v for k, v in merged.items() if k not in fields}
    try:
        return msgspec.convert(known, into), unknown
    except msgspec.ValidationError as exc:
        raise RequestError(f"invalid request: {exc}") from exc


def _set(struct: msgspec.Struct, skip: tuple[str, ...]) -> dict[str, Any]:
    return {
        name: value
        for name in struct.__struct_fields__
        if name not in skip and (value := getattr(struct, name)) is not None
    }


def _context(request: Request, who: Principal, tenant: str, body: _Common) -> CallContext:
    ctx = calls.context(request, who, tenant, body.user)
    ctx.provider = body.provider
    if body.timeout is not None:
        ctx.deadline = time.monotonic() + body.timeout
    return ctx


async def chat(request: Request) -> Response:
    """``POST /api/ai/chat/completions``: a canonical ``ChatResponse`` (or an SSE stream of chunks)."""
    who, tenant, raw = await body_access(request, "generate")
    body, extra = _parse(raw, ChatBody)
    params = _set(body, ("messages", "stream", "model", "provider", "timeout", "conversation_id"))
    req = Orchestrator.build_chat_request(
        body.messages, model=state(request).resolve_model(body.model), extra=extra, **params
    )
    ctx = _context(request, who, tenant, body)
    if body.conversation_id:
        ctx.metadata["conversation_id"] = body.conversation_id
    if body.stream:
        first, stream = await calls.open_stream(request, req, ctx)
        return SSEResponse(_events(first, stream), headers=calls.limit_headers(ctx))
    resp = await calls.chat(request, req, ctx)
    return JSONBytes(resp, headers={"x-podium-provider": resp.provider, **calls.limit_headers(ctx)})


async def _events(first: list[ChatChunk], stream: AsyncIterator[list[ChatChunk]]) -> AsyncIterator[bytes]:
    encoder = msgspec.json.Encoder()

    def data(batch: list[ChatChunk]) -> bytes:  # one piece per batch: one write to the socket
        return b"".join([b"data: " + encoder.encode(chunk) + b"\n\n" for chunk in batch])

    try:
        yield data(first)  # even when empty: SSEResponse listens for a disconnect after the first piece
        async for batch in stream:
            yield data(batch)
        yield b"data: [DONE]\n\n"
    except PodiumError as exc:
        yield b"data: " + error_body(describe(exc), anthropic=False) + b"\n\n"
    finally:
        await calls.aclose(stream)


async def complete(request: Request) -> Response:
    """``POST /api/ai/completions``: a canonical ``CompletionResponse``."""
    who, tenant, raw = await body_access(request, "generate")
    body, extra = _parse(raw, CompletionBody)
    req = CompletionRequest(
        prompt=body.prompt,
        model=state(request).resolve_model(body.model),
        max_tokens=body.max_tokens,
        temperature=body.temperature,
        top_p=body.top_p,
        stop=[body.stop] if isinstance(body.stop, str) else body.stop,
        seed=body.seed,
        user=body.user,
        extra=extra or None,
    )
    ctx = _context(request, who, tenant, body)
    resp = await state(request).orchestrator.complete_request(req, ctx)
    add_upstream_ms(request, resp.latency_ms)
    return JSONBytes(resp, headers={"x-podium-provider": resp.provider, **calls.limit_headers(ctx)})


async def embed(request: Request) -> Response:
    """``POST /api/ai/embeddings``: a canonical ``EmbedResponse``."""
    who, tenant, raw = await body_access(request, "generate")
    body, extra = _parse(raw, EmbeddingBody)
    req = EmbedRequest(
        input=[body.input] if isinstance(body.input, str) else body.input,
        model=state(request).resolve_model(body.model),
        dimensions=body.dimensions,
        user=body.user,
        extra=extra or None,
    )
    ctx = _context(request, who, tenant, body)
    resp = await state(request).orchestrator.embed_request(req, ctx)
    add_upstream_ms(request, resp.latency_ms)
    return JSONBytes(resp, headers={"x-podium-provider": resp.provider, **calls.limit_headers(ctx)})


routes = [
    Route("/chat/completions", chat, methods=["POST"]),
    Route("/completions", complete, methods=["POST"]),
    Route("/embeddings", embed, methods=["POST"]),
]
