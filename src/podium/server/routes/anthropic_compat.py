"""The Anthropic-compatible API: ``POST /v1/messages`` and ``POST /v1/messages/count_tokens``.

Any provider of the tenant can answer: the body becomes a canonical request, and the canonical answer
is encoded back in Anthropic's shapes. Errors use Anthropic's error body (see ``server.errors``).
"""

from __future__ import annotations

import time

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from podium.errors import RequestError
from podium.providers.base import new_id
from podium.server import calls
from podium.server.anthropic_wire import (
    CountTokensBody,
    EventEncoder,
    MessagesBody,
    chat_request,
    message,
    messages,
    tool_choice,
    tools,
)
from podium.server.deps import access, add_upstream_ms, decode_lenient, read_body, state
from podium.server.http import JSONBytes, SSEResponse
from podium.types import ChatRequest

_MESSAGES = msgspec.json.Decoder(MessagesBody)
_COUNT = msgspec.json.Decoder(CountTokensBody)


async def create_message(request: Request) -> Response:
    """``POST /v1/messages``: JSON, or Anthropic's SSE event sequence when ``stream`` is true."""
    who, tenant = await access(request, "generate")
    body, unknown = decode_lenient(await read_body(request), _MESSAGES, MessagesBody)
    model = state(request).resolve_model(body.model) or body.model
    req = chat_request(body, model, unknown)
    ctx = calls.context(request, who, tenant, req.user)
    with_thinking = body.thinking is not None
    if body.stream:
        first, stream = await calls.open_stream(request, req, ctx)
        head = first[0] if first else None
        mid = (head.id if head is not None and head.id else "") or new_id("msg")
        encoder = EventEncoder(mid, (head.model if head is not None else "") or model, with_thinking)
        provider = head.provider if head is not None else ""
        return SSEResponse(
            calls.sse_events(first, stream, encoder, anthropic=True, opening=encoder.start()),
            headers={"x-podium-provider": provider, **calls.limit_headers(ctx)},
        )
    resp = await calls.chat(request, req, ctx)
    return JSONBytes(
        message(resp, model, with_thinking),
        headers={"x-podium-provider": resp.provider, **calls.limit_headers(ctx)},
    )


async def count_tokens(request: Request) -> Response:
    """``POST /v1/messages/count_tokens``: asked of the first provider serving the model that can count.

    Counting is exact only where the provider's API counts (Anthropic's); podium does not estimate.
    """
    who, tenant = await access(request, "generate")
    body, unknown = decode_lenient(await read_body(request), _COUNT, CountTokensBody)
    model = state(request).resolve_model(body.model) or body.model
    choice, _ = tool_choice(body.tool_choice)
    extra = {**unknown, **({"thinking": body.thinking} if body.thinking is not None else {})}
    req = ChatRequest(
        messages=messages(body.system, body.messages),
        model=model,
        tools=tools(body.tools),
        tool_choice=choice,
        extra=extra or None,
    )
    ctx = calls.context(request, who, tenant, None)
    plan = state(request).orchestrator.router(tenant).plan(model, ctx)
    for provider, provider_model in plan:
        counter = getattr(provider, "count_tokens", None)
        if counter is None:
            continue
        target = msgspec.structs.replace(req, model=provider_model)
        t0 = time.perf_counter()
        raw = await counter(target)
        add_upstream_ms(request, (time.perf_counter() - t0) * 1000)
        return JSONBytes({"input_tokens": int(raw)})
    raise RequestError(
        f"no provider of tenant {tenant!r} serving model {model!r} can count tokens; "
        "token counting needs a provider whose API counts them (Anthropic format)",
        code="unsupported",
        param="model",
    )


routes = [
    Route("/v1/messages", create_message, methods=["POST"]),
    Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
]
