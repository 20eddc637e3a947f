"""Unit tests of the OpenAI adapter against a real local HTTP server (FakeUpstream)."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web

from podium.backend import CallContext, flatten
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
from podium.providers.base import NoOptions, ProviderConfig
from podium.providers.openai import OpenAIOptions, OpenAIProvider, OpenAIWire
from podium.providers.registry import PROVIDERS
from podium.testing import FakeUpstream
from podium.types import (
    ChatChunk,
    ChatRequest,
    CompletionRequest,
    EmbedRequest,
    FunctionCall,
    FunctionDef,
    ImagePart,
    ImageURL,
    JsonSchema,
    Message,
    NamedFunction,
    NamedToolChoice,
    ResponseFormat,
    TextPart,
    Tool,
    ToolCall,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CHAT_OK = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris."}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14},
}
HI = [Message(role="user", content="Hi")]


def answer(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        if isinstance(payload, str):
            return web.Response(status=status, text=payload, headers=headers)
        return web.json_response(payload, status=status, headers=headers)

    return handler


def sse(*events: Any, done: bool = True) -> Handler:
    """An SSE answer; each event is a dict (a data chunk), a str (raw lines) or bytes (raw body piece)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        for event in events:
            if isinstance(event, bytes):
                await resp.write(event)
            elif isinstance(event, str):
                await resp.write(f"{event}\n\n".encode())
            else:
                await resp.write(f"data: {json.dumps(event)}\n\n".encode())
        if done:
            await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    return handler


def delta(**fields: Any) -> dict[str, Any]:
    finish = fields.pop("finish_reason", None)
    return {"id": "c1", "model": "m", "choices": [{"index": 0, "delta": fields, "finish_reason": finish}]}


USAGE = {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
USAGE_CHUNK = {"id": "c1", "choices": [], "usage": USAGE}


@asynccontextmanager
async def upstream(
    handler: Handler, path: str = "/v1/chat/completions", method: str = "POST", **options: Any
) -> AsyncIterator[tuple[FakeUpstream, OpenAIProvider]]:
    up = FakeUpstream()
    up.route(method, path, handler)
    async with up:
        provider = make(up.url + "/v1", **options)
        try:
            yield up, provider
        finally:
            await provider.aclose()


def make(base_url: str, timeout: float = 10.0, **options: Any) -> OpenAIProvider:
    config = ProviderConfig(
        name="oa",
        type="openai",
        base_url=base_url,
        api_key="sk-test",
        default_model="gpt-4o-mini",
        timeout=timeout,
    )
    return OpenAIProvider(config, OpenAIOptions(**options))


async def sent_body(request: ChatRequest, **options: Any) -> dict[str, Any]:
    async with upstream(answer(CHAT_OK), **options) as (up, provider):
        await provider.chat(request, CallContext())
    body: dict[str, Any] = up.requests[0].body
    return body


async def collect(provider: OpenAIProvider, into: list[ChatChunk] | None = None) -> list[ChatChunk]:
    """Read a whole stream; ``into`` keeps the chunks that arrived before an error."""
    chunks = into if into is not None else []
    async for chunk in flatten(provider.stream(ChatRequest(messages=HI), CallContext())):
        chunks.append(chunk)
    return chunks


# --- request encoding ---


async def test_body_has_system_prompt_and_sampling_fields_and_no_unset_ones() -> None:
    request = ChatRequest(
        messages=[
            Message(role="system", content="Be brief."),
            Message(role="user", content="Capital of France?"),
        ],
        model="gpt-4o",
        temperature=0.2,
        top_p=0.9,
        max_tokens=50,
        stop=["\n\n"],
        seed=7,
        user="u-1",
        metadata={"team": "a"},
    )
    assert await sent_body(request) == {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Capital of France?"},
        ],
        "temperature": 0.2,
        "top_p": 0.9,
        "max_tokens": 50,
        "stop": ["\n\n"],
        "seed": 7,
        "user": "u-1",
        "metadata": {"team": "a"},
    }


async def test_body_uses_default_model_and_multipart_image_content() -> None:
    parts: list[TextPart | ImagePart] = [
        TextPart("What is this?"),
        ImagePart(ImageURL("data:image/png;base64,iVBORw0KGgo=", detail="low")),
    ]
    body = await sent_body(ChatRequest(messages=[Message(role="user", content=parts)]))
    assert body["model"] == "gpt-4o-mini"
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {
                    "type": "image_url",
                    "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"},
                },
            ],
        }
    ]


async def test_body_tools_named_tool_choice_and_parallel_flag() -> None:
    weather = FunctionDef(
        name="get_weather",
        description="Weather of a city",
        parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        strict=True,
    )
    body = await sent_body(
        ChatRequest(
            messages=HI,
            tools=[Tool(function=weather)],
            tool_choice=NamedToolChoice(function=NamedFunction(name="get_weather")),
            parallel_tool_calls=False,
        )
    )
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather of a city",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
                "strict": True,
            },
        }
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["parallel_tool_calls"] is False


async def test_body_string_tool_choice() -> None:
    body = await sent_body(
        ChatRequest(messages=HI, tools=[Tool(FunctionDef(name="f"))], tool_choice="required")
    )
    assert body["tool_choice"] == "required"
    assert body["tools"] == [{"type": "function", "function": {"name": "f"}}]


async def test_body_carries_tool_calls_and_tool_results() -> None:
    call = ToolCall(id="call_1", function=FunctionCall(name="get_weather", arguments='{"city":"Paris"}'))
    messages = [
        Message(role="user", content="Weather in Paris?"),
        Message(role="assistant", tool_calls=[call]),
        Message(role="tool", tool_call_id="call_1", content='{"temp": 21}'),
    ]
    body = await sent_body(ChatRequest(messages=messages))
    assert body["messages"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "content": '{"temp": 21}', "tool_call_id": "call_1"},
    ]


async def test_body_response_formats_keep_their_type() -> None:
    schema = JsonSchema(
        name="city", schema_={"type": "object", "properties": {"name": {"type": "string"}}}, strict=True
    )
    body = await sent_body(ChatRequest(messages=HI, response_format=ResponseFormat("json_schema", schema)))
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {
            "name": "city",
            "schema": {"type": "object", "properties": {"name": {"type": "string"}}},
            "strict": True,
        },
    }
    body = await sent_body(ChatRequest(messages=HI, response_format=ResponseFormat(type="text")))
    assert body["response_format"] == {"type": "text"}


async def test_extra_is_merged_last() -> None:
    body = await sent_body(
        ChatRequest(
            messages=HI, max_tokens=10, extra={"max_tokens": None, "max_completion_tokens": 99, "n": 1}
        )
    )
    assert body["max_tokens"] is None
    assert body["max_completion_tokens"] == 99
    assert body["n"] == 1


async def test_stream_body_asks_for_usage_unless_switched_off() -> None:
    async with upstream(sse(delta(content="x", finish_reason="stop"), USAGE_CHUNK)) as (up, provider):
        await collect(provider)
    assert up.requests[0].body["stream"] is True
    assert up.requests[0].body["stream_options"] == {"include_usage": True}
    async with upstream(sse(delta(content="x", finish_reason="stop")), stream_usage=False) as (up, provider):
        chunks = await collect(provider)
    assert "stream_options" not in up.requests[0].body
    assert up.requests[0].body["stream"] is True
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 0


async def test_bearer_auth_organization_and_project_headers() -> None:
    async with upstream(answer(CHAT_OK), organization="org-1", project="proj-1") as (up, provider):
        await provider.chat(ChatRequest(messages=HI), CallContext())
    headers = up.requests[0].headers
    assert headers["Authorization"] == "Bearer sk-test"
    assert headers["OpenAI-Organization"] == "org-1"
    assert headers["OpenAI-Project"] == "proj-1"


async def test_azure_key_header_and_api_version_on_every_endpoint() -> None:
    up = FakeUpstream()
    base = "/openai/deployments/gpt-4o"
    up.route("POST", f"{base}/chat/completions", answer(CHAT_OK))
    up.route("POST", f"{base}/embeddings", answer({"data": [{"index": 0, "embedding": [0.5]}], "model": "e"}))
    up.route(
        "POST",
        f"{base}/completions",
        answer({"id": "c", "choices": [{"text": "ok", "finish_reason": "stop"}]}),
    )
    up.route("GET", f"{base}/models", answer({"data": [{"id": "gpt-4o"}]}))
    async with up:
        provider = make(up.url + base, api_key_header="api-key", query_params={"api-version": "2024-10-21"})
        ctx = CallContext()
        await provider.chat(ChatRequest(messages=HI), ctx)
        await provider.embed(EmbedRequest(input=["a"]), ctx)
        await provider.complete(CompletionRequest(prompt="a"), ctx)
        assert await provider.list_models() == ["gpt-4o"]
        await provider.aclose()
    assert [r.path for r in up.requests] == [
        f"{base}/chat/completions",
        f"{base}/embeddings",
        f"{base}/completions",
        f"{base}/models",
    ]
    for r in up.requests:
        assert r.query == {"api-version": "2024-10-21"}
        assert r.headers["api-key"] == "sk-test"
        assert "Authorization" not in r.headers


async def test_custom_paths_and_no_model_listing() -> None:
    async with upstream(answer(CHAT_OK), path="/v1/generate", chat_path="/generate", models_path=None) as (
        up,
        provider,
    ):
        resp = await provider.chat(ChatRequest(messages=HI), CallContext())
        assert await provider.list_models() == ["gpt-4o-mini"]  # the configured default, no request
    assert resp.content == "Paris."
    assert [r.path for r in up.requests] == ["/v1/generate"]


def test_options_accept_camel_case_and_reject_unknown_keys() -> None:
    opts = OpenAIOptions.model_validate(
        {"apiKeyHeader": "api-key", "queryParams": {"a": "b"}, "streamUsage": False}
    )
    assert (opts.api_key_header, opts.query_params, opts.stream_usage) == ("api-key", {"a": "b"}, False)
    with pytest.raises(ValueError, match="extra"):
        OpenAIOptions.model_validate({"chatPth": "/x"})
    with pytest.raises(ValueError, match="api_key_header"):
        OpenAIOptions(api_key_header="bad header")


def test_registry_builds_the_openai_type_and_wire_is_reusable() -> None:
    assert PROVIDERS.get("openai") is OpenAIProvider
    config = ProviderConfig(name="x", type="openai")
    assert OpenAIProvider(config).http.base_url == "https://api.openai.com/v1"
    with pytest.raises(ConfigError):
        OpenAIProvider(config, NoOptions())
    wire = OpenAIWire(OpenAIOptions(chat_path="/v2/chat", api_key_header="x-key", query_params={"v": "1"}))
    assert wire.auth_headers("k") == {"x-key": "k"}
    assert wire.chat_path("m", False) == ("/v2/chat", {"v": "1"})
    assert wire.embed_path("m", 1) == "/embeddings?v=1"
    assert OpenAIWire().auth_headers(None) == {}


# --- chat answers ---


async def test_chat_answer_content_usage_ids_and_model() -> None:
    payload = {
        **CHAT_OK,
        "usage": {
            "prompt_tokens": 2000,
            "completion_tokens": 300,
            "total_tokens": 2300,
            "prompt_tokens_details": {"cached_tokens": 1920},
            "completion_tokens_details": {"reasoning_tokens": 256},
        },
    }
    async with upstream(answer(payload)) as (_, provider):
        resp = await provider.chat(ChatRequest(messages=HI), CallContext())
    assert (resp.content, resp.finish_reason, resp.raw_id, resp.id) == (
        "Paris.",
        "stop",
        "chatcmpl-1",
        "chatcmpl-1",
    )
    assert resp.model == "gpt-4o-mini-2024-07-18"
    assert resp.provider == "oa"
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens, resp.usage.total_tokens) == (
        2000,
        300,
        2300,
    )
    assert (resp.usage.cached_tokens, resp.usage.reasoning_tokens) == (1920, 256)
    assert resp.latency_ms > 0


async def test_tool_calls_without_ids_get_unique_ids() -> None:
    calls = [
        {"type": "function", "function": {"name": "a", "arguments": '{"x": 1}'}},
        {"type": "function", "function": {"name": "b", "arguments": {"y": 2}}},  # an object, not JSON text
    ]
    payload = {"choices": [{"message": {"role": "assistant", "tool_calls": calls}, "finish_reason": "stop"}]}
    async with upstream(answer(payload)) as (_, provider):
        resp = await provider.chat(ChatRequest(messages=HI), CallContext())
    assert [(c.function.name, c.parsed_arguments()) for c in resp.tool_calls] == [
        ("a", {"x": 1}),
        ("b", {"y": 2}),
    ]
    assert len({c.id for c in resp.tool_calls}) == 2
    assert all(c.id for c in resp.tool_calls)
    assert resp.finish_reason == "tool_calls"  # a host that says "stop" while calling tools
    assert resp.content is None
    assert resp.raw_id is None
    assert resp.id


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("stop", "stop"),
        ("length", "length"),
        ("content_filter", "content_filter"),
        ("tool_calls", "tool_calls"),
        ("eos", "stop"),
        ("something_new", "stop"),
        (None, "stop"),
    ],
)
async def test_finish_reasons_are_normalised(raw: str | None, expected: str) -> None:
    payload = {"choices": [{"message": {"role": "assistant", "content": "x"}, "finish_reason": raw}]}
    async with upstream(answer(payload)) as (_, provider):
        resp = await provider.chat(ChatRequest(messages=HI), CallContext())
    assert resp.finish_reason == expected


async def test_legacy_function_call_becomes_a_tool_call() -> None:
    message = {"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": '{"a": 1}'}}
    async with upstream(answer({"choices": [{"message": message, "finish_reason": "function_call"}]})) as (
        _,
        p,
    ):
        resp = await p.chat(ChatRequest(messages=HI), CallContext())
    assert [(c.function.name, c.parsed_arguments()) for c in resp.tool_calls] == [("f", {"a": 1})]
    assert resp.finish_reason == "tool_calls"


@pytest.mark.parametrize(
    ("message", "content", "reasoning"),
    [
        ({"content": "4", "reasoning_content": "2+2"}, "4", "2+2"),  # DeepSeek, Z.ai
        ({"content": "4", "reasoning": "adding"}, "4", "adding"),  # OpenRouter, Groq, Ollama
        (
            {
                "content": [
                    {"type": "thinking", "thinking": [{"type": "text", "text": "hm"}]},
                    {"type": "text", "text": "4"},
                ]
            },
            "4",
            "hm",
        ),  # Mistral Magistral
        ({"content": "4"}, "4", None),
    ],
)
async def test_reasoning_fields(message: dict[str, Any], content: str, reasoning: str | None) -> None:
    payload = {"choices": [{"message": {"role": "assistant", **message}, "finish_reason": "stop"}]}
    async with upstream(answer(payload)) as (_, provider):
        resp = await provider.chat(ChatRequest(messages=HI), CallContext())
    assert (resp.content, resp.reasoning) == (content, reasoning)


@pytest.mark.parametrize(
    ("usage", "cached"),
    [
        ({"prompt_tokens": 10, "completion_tokens": 1, "cached_tokens": 4}, 4),  # Hugging Face router
        ({"prompt_tokens": 10, "completion_tokens": 1, "num_cached_tokens": 5}, 5),  # Mistral
        ({"prompt_tokens": 10, "completion_tokens": 1, "prompt_cache_hit_tokens": 6}, 6),  # DeepSeek
    ],
)
async def test_cached_tokens_spellings_and_missing_total(usage: dict[str, int], cached: int) -> None:
    payload = {**CHAT_OK, "usage": usage}
    async with upstream(answer(payload)) as (_, provider):
        resp = await provider.chat(ChatRequest(messages=HI), CallContext())
    assert (resp.usage.cached_tokens, resp.usage.total_tokens) == (cached, 11)


async def test_refusal_is_reported_in_metadata() -> None:
    message = {"role": "assistant", "content": None, "refusal": "I can't help with that."}
    async with upstream(answer({"choices": [{"message": message, "finish_reason": "stop"}]})) as (
        _,
        provider,
    ):
        resp = await provider.chat(ChatRequest(messages=HI), CallContext())
    assert resp.metadata == {"refusal": "I can't help with that."}


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ('{"id": "x", "choices": [{"message": {"content": "Par', "application/json"),  # cut short
        ("<html>Bad gateway</html>", "text/html"),
        ('{"id": "x", "object": "chat.completion"}', "application/json"),  # no choices
        ('{"choices": [{"message": {"content": 42}}]}', "application/json"),  # wrong type
    ],
)
async def test_malformed_chat_answers(body: str, content_type: str) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(text=body, content_type=content_type)

    async with upstream(handler) as (_, provider):
        with pytest.raises(MalformedResponse) as info:
            await provider.chat(ChatRequest(messages=HI), CallContext())
    assert info.value.provider == "oa"


async def test_error_inside_http_200_answer_is_mapped() -> None:
    payload = {"error": {"code": 429, "message": "Provider returned error", "metadata": {"raw": "slow down"}}}
    async with upstream(answer(payload)) as (_, provider):
        with pytest.raises(ProviderRateLimited) as info:
            await provider.chat(ChatRequest(messages=HI), CallContext())
    assert "slow down" in info.value.message
    assert info.value.provider == "oa"


# --- HTTP errors ---


def err(message: str, **fields: Any) -> dict[str, Any]:
    return {"error": {"message": message, **fields}}


HTTP_ERRORS = [
    (401, err("Incorrect API key", code="invalid_api_key"), ProviderAuthError, "Incorrect API key"),
    (403, err("Country not supported", code="unsupported_country"), ProviderAuthError, "Country not"),
    (404, err("The model `x` does not exist", code="model_not_found"), ProviderNotFound, "does not exist"),
    (400, err("This model's maximum context length is 8192 tokens.", code="context_length_exceeded"),
     ContextLengthExceeded, "maximum context length"),
    (400, err("Invalid 'messages[0].role'", param="messages", code=None), ProviderBadRequest, "Invalid"),
    (400, err("The response was filtered", code="content_filter"), ProviderBadRequest, "filtered"),  # Azure
    (402, err("Insufficient credits", code=402), ProviderBadRequest, "Insufficient credits"),  # OpenRouter
    (422, {"detail": [{"loc": ["body"], "msg": "field required"}]}, ProviderBadRequest, "field required"),
    (400, {"detail": "Model nonexistent is not supported."}, ProviderBadRequest, "not supported"),  # Voyage
    (400, {"error": "Model not loaded"}, ProviderBadRequest, "Model not loaded"),  # LM Studio
    (500, err("The server had an error", type="server_error"), ProviderUnavailable, "server had an error"),
    (502, "<html>Bad Gateway</html>", ProviderUnavailable, "Bad Gateway"),
    (503, err("Service Unavailable", code=503), ProviderUnavailable, "Service Unavailable"),
]  # fmt: skip


@pytest.mark.parametrize(("status", "body", "error", "fragment"), HTTP_ERRORS)
async def test_http_errors_are_mapped(
    status: int, body: Any, error: type[ProviderError], fragment: str
) -> None:
    async with upstream(answer(body, status)) as (_, provider):
        with pytest.raises(ProviderError) as info:
            await provider.chat(ChatRequest(messages=HI), CallContext())
    assert type(info.value) is error
    assert fragment in info.value.message
    assert info.value.upstream_status == status
    assert info.value.provider == "oa"


async def test_rate_limit_with_retry_after_on_chat_and_stream() -> None:
    headers = {"retry-after": "7", "x-ratelimit-remaining-requests": "0"}
    body = {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}
    async with upstream(answer(body, 429, headers)) as (_, provider):
        with pytest.raises(ProviderRateLimited) as info:
            await provider.chat(ChatRequest(messages=HI), CallContext())
        assert info.value.retry_after == 7.0
        assert info.value.rate_limit_headers == {"x-ratelimit-remaining-requests": "0"}
        with pytest.raises(ProviderRateLimited) as info:
            await collect(provider)
        assert info.value.retry_after == 7.0


async def test_timeout() -> None:
    async def slow(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(2)
        return web.json_response(CHAT_OK)

    async with upstream(slow, timeout=0.2) as (_, provider):
        with pytest.raises(ProviderTimeout):
            await provider.chat(ChatRequest(messages=HI), CallContext())


async def test_stream_idle_timeout() -> None:
    async def stalls(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(f"data: {json.dumps(delta(content='Hel'))}\n\n".encode())
        await asyncio.sleep(2)
        return resp

    async with upstream(stalls, timeout=0.3) as (_, provider):
        got: list[ChatChunk] = []
        with pytest.raises(ProviderTimeout):
            await collect(provider, got)
    assert [c.delta for c in got] == ["Hel"]


async def test_connection_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    provider = make(f"http://127.0.0.1:{port}/v1")
    try:
        with pytest.raises(ProviderUnavailable):
            await provider.chat(ChatRequest(messages=HI), CallContext())
    finally:
        await provider.aclose()


# --- streams ---


async def test_stream_text_reasoning_finish_and_usage() -> None:
    events = [
        delta(role="assistant", content=""),
        delta(reasoning_content="think"),
        delta(content="Hel"),
        delta(content="lo"),
        delta(finish_reason="stop"),
        {**USAGE_CHUNK, "usage": {**USAGE, "prompt_tokens_details": {"cached_tokens": 2}}},
    ]
    async with upstream(sse(*events)) as (_, provider):
        chunks = await collect(provider)
    assert "".join(c.delta for c in chunks) == "Hello"
    assert "".join(c.reasoning or "" for c in chunks) == "think"
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    final = chunks[-1]
    assert final.usage is not None
    assert (final.usage.prompt_tokens, final.usage.total_tokens, final.usage.cached_tokens) == (3, 7, 2)
    assert {c.id for c in chunks} == {"c1"}
    assert {c.provider for c in chunks} == {"oa"}


async def test_stream_tool_call_fragments() -> None:
    events = [
        delta(
            tool_calls=[
                {"index": 0, "id": "call_a", "type": "function", "function": {"name": "f", "arguments": ""}}
            ]
        ),
        delta(tool_calls=[{"index": 0, "function": {"arguments": '{"x":'}}]),
        delta(tool_calls=[{"index": 0, "function": {"arguments": " 1}"}}]),
        # a host that omits the id and repeats the name in every fragment
        delta(tool_calls=[{"index": 1, "function": {"name": "g", "arguments": '{"y"'}}]),
        delta(tool_calls=[{"index": 1, "function": {"name": "g", "arguments": ": 2}"}}]),
        delta(finish_reason="tool_calls"),
        USAGE_CHUNK,
    ]
    async with upstream(sse(*events)) as (_, provider):
        chunks = await collect(provider)
    deltas = [d for c in chunks for d in c.tool_calls or []]
    assert [(d.index, d.id, d.name) for d in deltas if d.name] == [(0, "call_a", "f"), (1, deltas[3].id, "g")]
    assert deltas[3].id
    assert [d.name for d in deltas] == ["f", None, None, "g", None]
    args = {i: "".join(d.arguments for d in deltas if d.index == i) for i in (0, 1)}
    assert {i: json.loads(a) for i, a in args.items()} == {0: {"x": 1}, 1: {"y": 2}}
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["tool_calls"]


async def test_stream_tool_calls_without_index() -> None:
    events = [
        delta(tool_calls=[{"function": {"name": "a", "arguments": '{"q": 1}'}}]),
        delta(tool_calls=[{"function": {"name": "b", "arguments": "{}"}}]),
        delta(finish_reason="stop"),
        USAGE_CHUNK,
    ]
    async with upstream(sse(*events)) as (_, provider):
        chunks = await collect(provider)
    deltas = [d for c in chunks for d in c.tool_calls or []]
    assert [(d.index, d.name) for d in deltas] == [(0, "a"), (1, "b")]
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["tool_calls"]


async def test_stream_parallel_calls_sharing_an_index_are_kept_apart() -> None:
    call = {"index": 0, "type": "function"}
    events = [
        delta(tool_calls=[{**call, "id": "c1", "function": {"name": "w", "arguments": '{"city": "Oslo"}'}}]),
        delta(tool_calls=[{**call, "id": "c2", "function": {"name": "w", "arguments": '{"city": "Rome"}'}}]),
        delta(finish_reason="tool_calls"),
        USAGE_CHUNK,
    ]
    async with upstream(sse(*events)) as (_, provider):
        chunks = await collect(provider)
    deltas = [d for c in chunks for d in c.tool_calls or []]
    assert [(d.index, d.id, json.loads(d.arguments)) for d in deltas] == [
        (0, "c1", {"city": "Oslo"}),
        (1, "c2", {"city": "Rome"}),
    ]


async def test_stream_without_finish_reason_finishes_at_done() -> None:
    async with upstream(sse(delta(content="4"), USAGE_CHUNK)) as (_, provider):  # Snowflake
        chunks = await collect(provider)
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]


async def test_groq_usage_and_single_finish_reason() -> None:
    last = delta(finish_reason="stop")
    last["x_groq"] = {"usage": {"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11}}
    async with upstream(sse(delta(content="a"), delta(finish_reason="stop"), last)) as (_, provider):
        chunks = await collect(provider)
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 11


async def test_openrouter_comments_and_in_stream_error() -> None:
    error = {"id": "gen-1", "error": {"code": 502, "message": "Upstream died"}, "choices": []}
    async with upstream(sse(": OPENROUTER PROCESSING", delta(content="Hi"), error)) as (_, provider):
        got: list[ChatChunk] = []
        with pytest.raises(ProviderUnavailable) as info:
            await collect(provider, got)
    assert [c.delta for c in got] == ["Hi"]
    assert "Upstream died" in info.value.message
    assert info.value.provider == "oa"


async def test_chunks_read_together_with_an_in_stream_error_arrive_before_it() -> None:
    # One read brings three chunks and the error: the first leaves alone, the other two would sit in
    # the batch being built when the error is parsed; they still reach the caller (and are charged).
    error = {"id": "gen-1", "error": {"code": 502, "message": "Upstream died"}, "choices": []}
    events = [delta(content=w) for w in ("Hi", " there", "!")] + [error]
    one_read = b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in events)
    async with upstream(sse(one_read)) as (_, provider):
        got: list[ChatChunk] = []
        with pytest.raises(ProviderUnavailable, match="Upstream died"):
            await collect(provider, got)
    assert [c.delta for c in got] == ["Hi", " there", "!"]


async def test_groq_error_event() -> None:
    err = {"error": {"message": "Tool call validation failed", "code": "tool_use_failed", "status_code": 400}}
    async with upstream(sse(delta(content="x"), f"event: error\ndata: {json.dumps(err)}", done=False)) as (
        _,
        p,
    ):
        with pytest.raises(ProviderBadRequest, match="Tool call validation failed"):
            await collect(p)


async def test_in_stream_error_with_text_code_defaults_to_502() -> None:
    err = {"error": {"message": "overloaded", "code": "server_busy"}}
    async with upstream(sse(err)) as (_, provider):
        with pytest.raises(ProviderUnavailable) as info:
            await collect(provider)
    assert info.value.upstream_status == 502


async def test_truncated_stream_is_malformed() -> None:
    async with upstream(sse(delta(content="Hel"), delta(content="lo"), done=False)) as (_, provider):
        with pytest.raises(MalformedResponse):
            await collect(provider)
    # finish reason seen but the usage that was asked for never came
    async with upstream(sse(delta(content="Hi", finish_reason="stop"), done=False)) as (_, provider):
        with pytest.raises(MalformedResponse):
            await collect(provider)


async def test_stream_cut_inside_an_event_is_malformed() -> None:
    async with upstream(
        sse(delta(content="Hel"), b'data: {"id": "c1", "choices": [{"delta": {"cont', done=False)
    ) as (
        _,
        provider,
    ):
        with pytest.raises(MalformedResponse):
            await collect(provider)


async def test_stream_complete_without_done_after_finish_and_usage() -> None:
    async with upstream(sse(delta(content="Hi"), delta(finish_reason="length"), USAGE_CHUNK, done=False)) as (
        _,
        p,
    ):
        chunks = await collect(p)
    assert "".join(c.delta for c in chunks) == "Hi"
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["length"]
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 7


async def test_stream_answered_with_plain_json() -> None:
    async with upstream(answer(CHAT_OK)) as (_, provider):  # a server that ignores "stream"
        chunks = await collect(provider)
    assert "".join(c.delta for c in chunks) == "Paris."
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 14


# --- embeddings, completions, models ---


def b64(values: list[float], fmt: str = "f") -> str:
    return base64.b64encode(struct.pack(f"<{len(values)}{fmt}", *values)).decode()


async def test_embeddings_body_order_and_base64() -> None:
    payload = {
        "model": "text-embedding-3-small",
        "data": [{"index": 1, "embedding": b64([0.5, -0.25])}, {"index": 0, "embedding": [1.0, 2.0]}],
        "usage": {"prompt_tokens": 4, "total_tokens": 4},
    }
    async with upstream(answer(payload), path="/v1/embeddings", embedding_model="text-embedding-3-small") as (
        up,
        p,
    ):
        resp = await p.embed(EmbedRequest(input=["a", "b"], dimensions=2, user="u"), CallContext())
    assert up.requests[0].body == {
        "model": "text-embedding-3-small",
        "input": ["a", "b"],
        "encoding_format": "float",
        "dimensions": 2,
        "user": "u",
    }
    assert resp.embeddings == [[1.0, 2.0], [0.5, -0.25]]
    assert (resp.dimensions, resp.usage.prompt_tokens, resp.usage.total_tokens) == (2, 4, 4)
    assert resp.provider == "oa"


async def test_float64_base64_embeddings_from_old_vllm() -> None:
    values = [struct.unpack("<f", struct.pack("<f", 0.001 * i - 0.01))[0] for i in range(16)]
    payload = {"data": [{"index": 0, "embedding": b64(values, "d")}], "model": "e5"}
    async with upstream(answer(payload), path="/v1/embeddings") as (_, provider):
        resp = await provider.embed(EmbedRequest(input=["a"], model="e5"), CallContext())
    assert resp.embeddings == [values]


@pytest.mark.parametrize(
    "data",
    [
        [{"index": 0, "embedding": "not base64!"}],
        [{"index": 0, "embedding": base64.b64encode(b"12345").decode()}],  # not whole floats
        [],  # fewer embeddings than inputs
    ],
)
async def test_malformed_embeddings(data: list[dict[str, Any]]) -> None:
    async with upstream(answer({"data": data, "model": "e"}), path="/v1/embeddings") as (_, provider):
        with pytest.raises(MalformedResponse):
            await provider.embed(EmbedRequest(input=["a"], model="e"), CallContext())


async def test_legacy_completion() -> None:
    payload = {
        "id": "cmpl-1",
        "model": "davinci-002",
        "choices": [{"index": 0, "text": " world", "finish_reason": "length"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
    async with upstream(answer(payload), path="/v1/completions") as (up, provider):
        resp = await provider.complete(
            CompletionRequest(
                prompt="Hello", model="davinci-002", max_tokens=1, stop=["."], extra={"echo": True}
            ),
            CallContext(),
        )
    assert up.requests[0].body == {
        "model": "davinci-002",
        "prompt": "Hello",
        "max_tokens": 1,
        "stop": ["."],
        "echo": True,
    }
    assert (resp.text, resp.finish_reason, resp.raw_id, resp.usage.total_tokens) == (
        " world",
        "length",
        "cmpl-1",
        2,
    )


async def test_models_and_check() -> None:
    payload = {
        "object": "list",
        "data": [{"id": "gpt-4o", "object": "model"}, {"id": "o3-mini", "object": "model"}],
    }
    async with upstream(answer(payload), path="/v1/models", method="GET") as (_, provider):
        assert await provider.list_models() == ["gpt-4o", "o3-mini"]
        result = await provider.check()
    assert result.success
    assert result.models == ["gpt-4o", "o3-mini"]


async def test_check_reports_a_bad_key() -> None:
    body = {"error": {"message": "Incorrect API key provided", "code": "invalid_api_key"}}
    async with upstream(answer(body, 401), path="/v1/models", method="GET") as (_, provider):
        result = await provider.check()
    assert not result.success
    assert result.error_type == "ProviderAuthError"
