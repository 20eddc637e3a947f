"""The OpenAI-compatible API: chat and legacy completions, embeddings, models under ``/v1``.

These are the hot routes: each takes the raw request, decodes it with msgspec straight into canonical
types and encodes the answer with msgspec. No per-request model objects beyond those.
"""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from podium.errors import ModelNotFound, RequestError
from podium.providers.base import new_id
from podium.server import calls
from podium.server.deps import access, add_upstream_ms, decode_lenient, read_body, state
from podium.server.http import JSONBytes, SSEResponse
from podium.server.openai_wire import (
    ChatCompletionBody,
    ChunkEncoder,
    CompletionBody,
    EmbeddingBody,
    chat_completion,
    chat_request,
    completion_extra,
    embeddings,
    text_completion,
)
from podium.types import CompletionRequest, EmbedRequest

_CHAT = msgspec.json.Decoder(ChatCompletionBody)
_COMPLETION = msgspec.json.Decoder(CompletionBody)
_EMBEDDING = msgspec.json.Decoder(EmbeddingBody)


async def chat_completions(request: Request) -> Response:
    """``POST /v1/chat/completions``: JSON, or SSE when ``stream`` is true."""
    who, tenant = await access(request, "generate")
    body, unknown = decode_lenient(await read_body(request), _CHAT, ChatCompletionBody)
    req = chat_request(body, state(request).resolve_model(body.model), unknown)
    ctx = calls.context(request, who, tenant, body.user)
    if body.stream:
        first, stream = await calls.open_stream(request, req, ctx)
        include_usage = body.stream_options is not None and body.stream_options.include_usage
        head = first[0] if first else None
        rid = (head.id if head is not None and head.id else "") or new_id()
        encoder = ChunkEncoder(rid, body.model or "", include_usage)
        provider = head.provider if head is not None else ""
        return SSEResponse(
            calls.sse_events(first, stream, encoder, anthropic=False),
            headers={"x-podium-provider": provider, **calls.limit_headers(ctx)},
        )
    resp = await calls.chat(request, req, ctx)
    return JSONBytes(
        chat_completion(resp, body.model or ""),
        headers={"x-podium-provider": resp.provider, **calls.limit_headers(ctx)},
    )


async def completions(request: Request) -> Response:
    """``POST /v1/completions``: a legacy text completion (no streaming)."""
    who, tenant = await access(request, "generate")
    body, unknown = decode_lenient(await read_body(request), _COMPLETION, CompletionBody)
    prompt = body.prompt if isinstance(body.prompt, str) else body.prompt[0]
    if not prompt:
        raise RequestError("prompt must be a non-empty string", param="prompt")
    req = CompletionRequest(
        prompt=prompt,
        model=state(request).resolve_model(body.model),
        max_tokens=body.max_tokens,
        temperature=body.temperature,
        top_p=body.top_p,
        stop=[body.stop] if isinstance(body.stop, str) else body.stop,
        seed=body.seed,
        user=body.user,
        extra=completion_extra(body, unknown),
    )
    ctx = calls.context(request, who, tenant, body.user)
    resp = await state(request).orchestrator.complete_request(req, ctx)
    add_upstream_ms(request, resp.latency_ms)
    return JSONBytes(
        text_completion(resp, body.model or ""),
        headers={"x-podium-provider": resp.provider, **calls.limit_headers(ctx)},
    )


async def create_embeddings(request: Request) -> Response:
    """``POST /v1/embeddings``: float or base64 vectors."""
    who, tenant = await access(request, "generate")
    body, unknown = decode_lenient(await read_body(request), _EMBEDDING, EmbeddingBody)
    texts = [body.input] if isinstance(body.input, str) else body.input
    req = EmbedRequest(
        input=texts,
        model=state(request).resolve_model(body.model),
        dimensions=body.dimensions,
        user=body.user,
        extra=unknown or None,
    )
    ctx = calls.context(request, who, tenant, body.user)
    resp = await state(request).orchestrator.embed_request(req, ctx)
    add_upstream_ms(request, resp.latency_ms)
    return JSONBytes(
        embeddings(resp, body.model or "", body.encoding_format),
        headers={"x-podium-provider": resp.provider, **calls.limit_headers(ctx)},
    )


async def _models(request: Request, tenant: str) -> list[dict[str, Any]]:
    st = state(request)
    models = await st.orchestrator.list_models(tenant)
    seen: dict[str, dict[str, Any]] = {}
    providers = set()
    for m in models:
        providers.add(m.provider)
        seen.setdefault(m.id, {"id": m.id, "object": "model", "created": 0, "owned_by": m.provider})
    for alias, target in st.aliases.items():
        owner = seen[target]["owned_by"] if target in seen else target.partition("/")[0]
        if target in seen or ("/" in target and owner in providers):
            seen.setdefault(alias, {"id": alias, "object": "model", "created": 0, "owned_by": owner})
    return list(seen.values())


async def list_models(request: Request) -> Response:
    """``GET /v1/models``: the models of the tenant's providers, and the aliases that reach them."""
    _, tenant = await access(request, "models.read")
    return JSONBytes({"object": "list", "data": await _models(request, tenant)})


async def get_model(request: Request) -> Response:
    """``GET /v1/models/{model}``: one model of the tenant."""
    _, tenant = await access(request, "models.read")
    wanted = request.path_params["model"]
    for model in await _models(request, tenant):
        if model["id"] == wanted:
            return JSONBytes(model)
    raise ModelNotFound(
        f"tenant {tenant!r} has no model {wanted!r}; GET /v1/models lists them", param="model"
    )


routes = [
    Route("/v1/chat/completions", chat_completions, methods=["POST"]),
    Route("/v1/completions", completions, methods=["POST"]),
    Route("/v1/embeddings", create_embeddings, methods=["POST"]),
    Route("/v1/models", list_models, methods=["GET"]),
    Route("/v1/models/{model:path}", get_model, methods=["GET"]),
]
