"""The google adapter against a real local HTTP server: what it sends, what it parses, how it fails."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from podium.backend import CallContext, flatten
from podium.errors import (
    ContextLengthExceeded,
    MalformedResponse,
    ProviderAuthError,
    ProviderBadRequest,
    ProviderError,
    ProviderNotFound,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
    RequestError,
)
from podium.providers.base import ProviderConfig
from podium.providers.google import GoogleOptions, GoogleProvider, GoogleWire
from podium.testing import FakeUpstream
from podium.types import (
    ChatChunk,
    ChatRequest,
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

ANSWER = {
    "candidates": [{"content": {"role": "model", "parts": [{"text": "Paris."}]}, "finishReason": "STOP"}],
    "usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": 2, "totalTokenCount": 9},
    "modelVersion": "gemini-2.5-flash-001",
    "responseId": "resp-1",
}


def answer(parts: list[dict[str, Any]], finish: str | None = "STOP", **extra: Any) -> dict[str, Any]:
    cand: dict[str, Any] = {"content": {"role": "model", "parts": parts}}
    if finish:
        cand["finishReason"] = finish
    return {"candidates": [cand], **extra}


def json_handler(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        return web.json_response(payload, status=status, headers=headers)

    return handle


def sse_handler(events: list[Any], *, crlf: bool = True) -> Handler:
    sep = "\r\n\r\n" if crlf else "\n\n"

    async def handle(request: web.Request) -> web.StreamResponse:
        text = "".join(f"data: {json.dumps(e)}{sep}" for e in events)
        return web.Response(text=text, content_type="text/event-stream")

    return handle


class Upstream(FakeUpstream):
    """A FakeUpstream whose one catch-all route serves whatever handler the test sets."""

    def __init__(self) -> None:
        super().__init__()
        self.handler: Handler = json_handler(ANSWER)
        self.route("*", "/{tail:.*}", self._dispatch)

    def serve(self, handler: Handler) -> None:
        self.handler = handler

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        return await self.handler(request)


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    up = Upstream()
    await up.start()
    try:
        yield up
    finally:
        await up.stop()


def make(up: Upstream, path: str = "/v1beta", **options: Any) -> GoogleProvider:
    config = ProviderConfig(
        name="gem",
        type="google",
        base_url=up.url + path,
        api_key="secret",
        default_model="gemini-2.5-flash",
        timeout=2,
    )
    return GoogleProvider(config, GoogleOptions(**options))


async def chat_body(up: Upstream, request: ChatRequest, **options: Any) -> dict[str, Any]:
    """Send ``request`` and return the JSON body the server received."""
    up.serve(json_handler(ANSWER))
    provider = make(up, **options)
    try:
        await provider.chat(request, CallContext())
    finally:
        await provider.aclose()
    body: dict[str, Any] = up.requests[-1].body
    return body


async def collect(provider: GoogleProvider, request: ChatRequest) -> list[ChatChunk]:
    try:
        return [c async for c in flatten(provider.stream(request, CallContext()))]
    finally:
        await provider.aclose()


def user(text: str) -> Message:
    return Message(role="user", content=text)


# --- request encoding


async def test_system_prompts_roles_and_merged_turns(upstream: Upstream) -> None:
    body = await chat_body(
        upstream,
        ChatRequest(
            [
                Message(role="system", content="Be brief."),
                Message(role="developer", content="Answer in French."),
                user("Hi"),
                user("Capital of France?"),
                Message(role="assistant", content="Paris."),
                user("Thanks"),
            ]
        ),
    )
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}, {"text": "Answer in French."}]}
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Hi"}, {"text": "Capital of France?"}]},
        {"role": "model", "parts": [{"text": "Paris."}]},
        {"role": "user", "parts": [{"text": "Thanks"}]},
    ]
    assert "generationConfig" not in body
    assert upstream.requests[-1].path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert upstream.requests[-1].headers["x-goog-api-key"] == "secret"


async def test_images_from_data_uris_and_urls(upstream: Upstream) -> None:
    parts = [
        TextPart("What is in these?"),
        ImagePart(ImageURL("data:image/png;base64,iVBORw0KGgo=")),
        ImagePart(ImageURL("https://example.com/cat.webp?size=large")),
        ImagePart(ImageURL("https://example.com/render")),
        ImagePart(ImageURL("gs://bucket/report.pdf")),
        ImagePart(ImageURL("data:image/svg+xml,%3Csvg%2F%3E")),
    ]
    body = await chat_body(upstream, ChatRequest([Message(role="user", content=parts)]))
    assert body["contents"][0]["parts"] == [
        {"text": "What is in these?"},
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        {"fileData": {"fileUri": "https://example.com/cat.webp?size=large", "mimeType": "image/webp"}},
        {"fileData": {"fileUri": "https://example.com/render", "mimeType": "image/jpeg"}},
        {"fileData": {"fileUri": "gs://bucket/report.pdf", "mimeType": "application/pdf"}},
        {"inlineData": {"mimeType": "image/svg+xml", "data": "PHN2Zy8+"}},
    ]


WEATHER = Tool(
    FunctionDef(
        "get_weather",
        "Weather in a city.",
        {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    )
)


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        (
            NamedToolChoice(NamedFunction("get_weather")),
            {"mode": "ANY", "allowedFunctionNames": ["get_weather"]},
        ),
    ],
)
async def test_tools_and_tool_choice(upstream: Upstream, choice: Any, config: dict[str, Any]) -> None:
    bare = Tool(FunctionDef("ping"))
    body = await chat_body(
        upstream, ChatRequest([user("Weather?")], tools=[WEATHER, bare], tool_choice=choice)
    )
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Weather in a city.",
                    "parametersJsonSchema": WEATHER.function.parameters,
                },
                {"name": "ping"},
            ]
        }
    ]
    assert body["toolConfig"] == {"functionCallingConfig": config}


async def test_tool_calls_and_results(upstream: Upstream) -> None:
    calls = [
        ToolCall("call_a", FunctionCall("get_weather", '{"city": "Paris"}')),
        ToolCall("call_b", FunctionCall("get_weather", '{"city": "Rome"}')),
    ]
    body = await chat_body(
        upstream,
        ChatRequest(
            [
                user("Weather in Paris and Rome?"),
                Message(role="assistant", content="Checking.", tool_calls=calls),
                Message(role="tool", tool_call_id="call_a", content='{"temp": 21}'),
                Message(role="tool", tool_call_id="call_b", content="sunny"),
                Message(role="tool", tool_call_id="call_c", name="clock", content="[1, 2]"),
            ],
            tools=[WEATHER],
        ),
    )
    model, results = body["contents"][1], body["contents"][2]
    assert model["role"] == "model"
    assert model["parts"][0] == {"text": "Checking."}
    assert [p["functionCall"] for p in model["parts"][1:]] == [
        {"name": "get_weather", "args": {"city": "Paris"}, "id": "call_a"},
        {"name": "get_weather", "args": {"city": "Rome"}, "id": "call_b"},
    ]
    # Gemini 3 needs a signature on the first call of a step; history has none, so the documented bypass.
    assert model["parts"][1]["thoughtSignature"] == "c2tpcF90aG91Z2h0X3NpZ25hdHVyZV92YWxpZGF0b3I="
    assert "thoughtSignature" not in model["parts"][2]
    assert results == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"temp": 21}, "id": "call_a"}},
            {"functionResponse": {"name": "get_weather", "response": {"result": "sunny"}, "id": "call_b"}},
            {"functionResponse": {"name": "clock", "response": {"result": [1, 2]}, "id": "call_c"}},
        ],
    }


async def test_tool_result_for_unknown_call_is_refused(upstream: Upstream) -> None:
    with pytest.raises(RequestError, match="call_x"):
        await chat_body(
            upstream, ChatRequest([user("Hi"), Message(role="tool", tool_call_id="call_x", content="1")])
        )
    assert upstream.requests == []


async def test_tool_call_arguments_must_be_json(upstream: Upstream) -> None:
    bad = Message(role="assistant", tool_calls=[ToolCall("c1", FunctionCall("f", "{oops"))])
    with pytest.raises(RequestError, match="not JSON"):
        await chat_body(upstream, ChatRequest([user("Hi"), bad]))


async def test_generation_config(upstream: Upstream) -> None:
    body = await chat_body(
        upstream,
        ChatRequest(
            [user("Hi")],
            temperature=0.2,
            top_p=0.9,
            max_tokens=64,
            stop=["\nObservation:"],
            seed=7,
            response_format=ResponseFormat(type="json_object"),
        ),
    )
    assert body["generationConfig"] == {
        "temperature": 0.2,
        "topP": 0.9,
        "maxOutputTokens": 64,
        "stopSequences": ["\nObservation:"],
        "seed": 7,
        "responseMimeType": "application/json",
    }


async def test_json_schema_response_format(upstream: Upstream) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    fmt = ResponseFormat(type="json_schema", json_schema=JsonSchema("City", schema))
    body = await chat_body(upstream, ChatRequest([user("Largest city?")], response_format=fmt))
    assert body["generationConfig"] == {"responseMimeType": "application/json", "responseJsonSchema": schema}


async def test_extra_is_merged_last(upstream: Upstream) -> None:
    extra = {
        "generationConfig": {"thinkingConfig": {"thinkingBudget": 0}, "topP": 0.5},
        "cachedContent": "c/1",
    }
    body = await chat_body(upstream, ChatRequest([user("Hi")], temperature=1.0, top_p=0.9, extra=extra))
    assert body["generationConfig"] == {
        "temperature": 1.0,
        "topP": 0.5,
        "thinkingConfig": {"thinkingBudget": 0},
    }
    assert body["cachedContent"] == "c/1"


async def test_safety_settings_option(upstream: Upstream) -> None:
    settings = [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]
    body = await chat_body(upstream, ChatRequest([user("Hi")]), safety_settings=settings)
    assert body["safetySettings"] == settings


async def test_bearer_auth_and_prefixed_model_name(upstream: Upstream) -> None:
    await chat_body(upstream, ChatRequest([user("Hi")], model="models/gemini-2.0-flash"), auth="bearer")
    sent = upstream.requests[-1]
    assert sent.path == "/v1beta/models/gemini-2.0-flash:generateContent"
    assert sent.headers["Authorization"] == "Bearer secret"
    assert "x-goog-api-key" not in sent.headers


def test_options_reject_unknown_keys_and_accept_camel_case() -> None:
    assert (
        GoogleOptions.model_validate({"embeddingModel": "gemini-embedding-2"}).embedding_model
        == "gemini-embedding-2"
    )
    with pytest.raises(ValueError, match="extra"):
        GoogleOptions.model_validate({"nope": 1})


# --- answers


async def test_thoughts_function_calls_and_usage(upstream: Upstream) -> None:
    payload = answer(
        [
            {"text": "Let me think.", "thought": True},
            {"text": "Checking both."},
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
            {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}, "id": "fc_2"}},
        ],
        usageMetadata={
            "promptTokenCount": 40,
            "candidatesTokenCount": 12,
            "thoughtsTokenCount": 30,
            "cachedContentTokenCount": 32,
        },
        responseId="r-9",
        modelVersion="gemini-2.5-pro",
    )
    upstream.serve(json_handler(payload))
    provider = make(upstream)
    resp = await provider.chat(ChatRequest([user("Weather?")], tools=[WEATHER]), CallContext())
    await provider.aclose()
    assert resp.content == "Checking both."
    assert resp.reasoning == "Let me think."
    assert resp.finish_reason == "tool_calls"
    assert [(c.function.name, c.parsed_arguments()) for c in resp.tool_calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Rome"}),
    ]
    ids = [c.id for c in resp.tool_calls]
    assert ids[1] == "fc_2"
    assert ids[0].startswith("call_")
    assert ids[0] != ids[1]
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens, resp.usage.total_tokens) == (40, 42, 82)
    assert (resp.usage.cached_tokens, resp.usage.reasoning_tokens) == (32, 30)
    assert (resp.raw_id, resp.model, resp.provider) == ("r-9", "gemini-2.5-pro", "gem")


@pytest.mark.parametrize(
    ("finish", "expected"),
    [
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("OTHER", "stop"),
        ("STOP", "stop"),
    ],
)
async def test_finish_reasons(upstream: Upstream, finish: str, expected: str) -> None:
    upstream.serve(json_handler(answer([{"text": "x"}], finish)))
    provider = make(upstream)
    resp = await provider.chat(ChatRequest([user("Hi")]), CallContext())
    await provider.aclose()
    assert resp.finish_reason == expected


async def test_blocked_prompt_is_a_content_filter_answer(upstream: Upstream) -> None:
    payload = {
        "promptFeedback": {"blockReason": "SAFETY"},
        "usageMetadata": {"promptTokenCount": 5, "totalTokenCount": 5},
    }
    upstream.serve(json_handler(payload))
    provider = make(upstream)
    resp = await provider.chat(ChatRequest([user("something bad")]), CallContext())
    await provider.aclose()
    assert (resp.content, resp.finish_reason, resp.tool_calls) == ("", "content_filter", [])
    assert resp.metadata["block_reason"] == "SAFETY"
    assert resp.usage.prompt_tokens == 5


async def test_stream_sends_alt_sse_and_joins_deltas(upstream: Upstream) -> None:
    events = [
        answer(
            [{"text": "Hmm", "thought": True}],
            None,
            usageMetadata={"promptTokenCount": 4, "totalTokenCount": 4},
        ),
        answer([{"text": "Hello"}], None, usageMetadata={"promptTokenCount": 4, "candidatesTokenCount": 1}),
        answer(
            [{"text": " world"}],
            "STOP",
            responseId="r1",
            usageMetadata={"promptTokenCount": 4, "candidatesTokenCount": 2, "thoughtsTokenCount": 3},
        ),
    ]
    upstream.serve(sse_handler(events, crlf=True))
    chunks = await collect(make(upstream), ChatRequest([user("Hi")]))
    sent = upstream.requests[-1]
    assert sent.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert sent.query == {"alt": "sse"}
    assert "".join(c.delta for c in chunks) == "Hello world"
    assert "".join(c.reasoning or "" for c in chunks) == "Hmm"
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    usage = chunks[-1].usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens, usage.reasoning_tokens) == (
        4,
        5,
        9,
        3,
    )
    assert chunks[-1].id == "r1"


async def test_stream_function_call_then_stop_is_tool_calls(upstream: Upstream) -> None:
    events = [
        answer([{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}], None),
        answer([{"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}}], None),
        answer([{"text": ""}], "STOP"),
    ]
    upstream.serve(sse_handler(events, crlf=False))
    chunks = await collect(make(upstream), ChatRequest([user("Weather?")], tools=[WEATHER]))
    deltas = [d for c in chunks for d in c.tool_calls or []]
    assert [(d.index, d.name, json.loads(d.arguments)) for d in deltas] == [
        (0, "get_weather", {"city": "Paris"}),
        (1, "get_weather", {"city": "Rome"}),
    ]
    assert all(d.id for d in deltas)
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["tool_calls"]


async def test_stream_answered_with_a_json_array(upstream: Upstream) -> None:
    events = [answer([{"text": "Sco"}], None), answer([{"text": "op"}], "MAX_TOKENS")]

    async def handle(request: web.Request) -> web.StreamResponse:
        return web.Response(text=json.dumps(events, indent=2), content_type="application/json")

    upstream.serve(handle)
    chunks = await collect(make(upstream), ChatRequest([user("Name a pelican")]))
    assert "".join(c.delta for c in chunks) == "Scoop"
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["length"]


async def test_stream_blocked_prompt(upstream: Upstream) -> None:
    upstream.serve(sse_handler([{"promptFeedback": {"blockReason": "OTHER"}}]))
    chunks = await collect(make(upstream), ChatRequest([user("x")]))
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["content_filter"]
    assert chunks[-1].usage is not None


async def test_error_event_inside_a_stream(upstream: Upstream) -> None:
    events = [
        answer([{"text": "Hel"}], None),
        {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}},
    ]
    upstream.serve(sse_handler(events))
    with pytest.raises(ProviderUnavailable, match="overloaded") as info:
        await collect(make(upstream), ChatRequest([user("Hi")]))
    assert info.value.provider == "gem"


async def test_truncated_stream_is_malformed(upstream: Upstream) -> None:
    upstream.serve(sse_handler([answer([{"text": "Hel"}], None)]))
    with pytest.raises(MalformedResponse, match="ended before"):
        await collect(make(upstream), ChatRequest([user("Hi")]))


async def test_truncated_json_array_stream_is_malformed(upstream: Upstream) -> None:
    async def handle(request: web.Request) -> web.StreamResponse:
        return web.Response(
            text=json.dumps([answer([{"text": "Hel"}], None)])[:-30], content_type="application/json"
        )

    upstream.serve(handle)
    with pytest.raises(MalformedResponse):
        await collect(make(upstream), ChatRequest([user("Hi")]))


async def test_malformed_json_body(upstream: Upstream) -> None:
    async def handle(request: web.Request) -> web.StreamResponse:
        return web.Response(text='{"candidates": [', content_type="application/json")

    upstream.serve(handle)
    provider = make(upstream)
    with pytest.raises(MalformedResponse):
        await provider.chat(ChatRequest([user("Hi")]), CallContext())
    await provider.aclose()


async def test_answer_of_the_wrong_shape_is_malformed(upstream: Upstream) -> None:
    upstream.serve(json_handler({"candidates": "nope"}))
    provider = make(upstream)
    with pytest.raises(MalformedResponse):
        await provider.chat(ChatRequest([user("Hi")]), CallContext())
    await provider.aclose()


# --- errors


def gerror(
    code: int, message: str, status: str, details: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status, "details": details or []}}


@pytest.mark.parametrize(
    ("status", "payload", "headers", "expected"),
    [
        (
            401,
            gerror(401, "Request had invalid authentication credentials.", "UNAUTHENTICATED"),
            {},
            ProviderAuthError,
        ),
        (
            403,
            gerror(403, "Permission denied on resource project.", "PERMISSION_DENIED"),
            {},
            ProviderAuthError,
        ),
        (
            400,
            gerror(
                400,
                "API key not valid. Please pass a valid API key.",
                "INVALID_ARGUMENT",
                [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}],
            ),
            {},
            ProviderAuthError,
        ),
        (
            404,
            gerror(404, "models/gemini-9 is not found for API version v1beta", "NOT_FOUND"),
            {},
            ProviderNotFound,
        ),
        (
            400,
            gerror(
                400,
                "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
                "INVALID_ARGUMENT",
            ),
            {},
            ContextLengthExceeded,
        ),
        (400, gerror(400, "Invalid JSON payload received.", "INVALID_ARGUMENT"), {}, ProviderBadRequest),
        (500, gerror(500, "An internal error has occurred.", "INTERNAL"), {}, ProviderUnavailable),
        (503, gerror(503, "The model is overloaded.", "UNAVAILABLE"), {}, ProviderUnavailable),
        (
            504,
            gerror(504, "Deadline expired before operation could complete.", "DEADLINE_EXCEEDED"),
            {},
            ProviderTimeout,
        ),
        (
            429,
            gerror(429, "Resource exhausted.", "RESOURCE_EXHAUSTED"),
            {"Retry-After": "12"},
            ProviderRateLimited,
        ),
    ],
)
async def test_error_mapping(
    upstream: Upstream, status: int, payload: Any, headers: dict[str, str], expected: type[ProviderError]
) -> None:
    upstream.serve(json_handler(payload, status, headers))
    provider = make(upstream)
    with pytest.raises(ProviderError) as info:
        await provider.chat(ChatRequest([user("Hi")]), CallContext())
    await provider.aclose()
    assert type(info.value) is expected
    assert info.value.upstream_status == status
    assert info.value.provider == "gem"
    assert payload["error"]["message"][:20] in info.value.message
    if expected is ProviderRateLimited:
        assert isinstance(info.value, ProviderRateLimited)
        assert info.value.retry_after == 12


async def test_rate_limit_retry_delay_from_retry_info(upstream: Upstream) -> None:
    details = [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaId": "PerMinute"}]},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "31s"},
    ]
    upstream.serve(
        json_handler(gerror(429, "Quota exceeded.", "RESOURCE_EXHAUSTED", details), 429),
    )
    provider = make(upstream)
    with pytest.raises(ProviderRateLimited) as info:
        await provider.chat(ChatRequest([user("Hi")]), CallContext())
    await provider.aclose()
    assert info.value.retry_after == 31.0


async def test_stream_error_answered_as_a_json_array(upstream: Upstream) -> None:
    payload = [
        gerror(
            400,
            "API key not valid.",
            "INVALID_ARGUMENT",
            [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}],
        )
    ]
    upstream.serve(json_handler(payload, 400))
    with pytest.raises(ProviderAuthError, match="API key not valid"):
        await collect(make(upstream), ChatRequest([user("Hi")]))


async def test_non_json_error_body(upstream: Upstream) -> None:
    async def handle(request: web.Request) -> web.StreamResponse:
        return web.Response(status=502, text="<html>Bad Gateway</html>", content_type="text/html")

    upstream.serve(handle)
    provider = make(upstream)
    with pytest.raises(ProviderUnavailable, match="Bad Gateway"):
        await provider.chat(ChatRequest([user("Hi")]), CallContext())
    await provider.aclose()


async def test_timeout(upstream: Upstream) -> None:
    async def slow(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(1.5)
        return web.json_response(ANSWER)

    upstream.serve(slow)
    config = ProviderConfig(
        name="gem",
        type="google",
        base_url=upstream.url + "/v1beta",
        api_key="k",
        default_model="gemini-2.5-flash",
        timeout=0.3,
    )
    provider = GoogleProvider(config)
    with pytest.raises(ProviderTimeout):
        await provider.chat(ChatRequest([user("Hi")]), CallContext())
    await provider.aclose()


async def test_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = ProviderConfig(
        name="gem",
        type="google",
        base_url=f"http://127.0.0.1:{port}/v1beta",
        api_key="k",
        default_model="gemini-2.5-flash",
    )
    provider = GoogleProvider(config)
    with pytest.raises(ProviderUnavailable, match="cannot connect"):
        await provider.chat(ChatRequest([user("Hi")]), CallContext())
    await provider.aclose()


# --- embeddings, token counts, models


async def test_embed_batch_with_dimensions_and_extra(upstream: Upstream) -> None:
    payload = {"embeddings": [{"values": [0.1, 0.2, 0.3]}, {"values": [0.4, 0.5, 0.6]}]}
    upstream.serve(json_handler(payload))
    provider = make(upstream)
    out = await provider.embed(
        EmbedRequest(["a", "b"], dimensions=3, extra={"taskType": "RETRIEVAL_DOCUMENT"}), CallContext()
    )
    await provider.aclose()
    assert out.embeddings == [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]
    sent = upstream.requests[-1]
    assert sent.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert sent.body == {
        "requests": [
            {
                "content": {"parts": [{"text": t}]},
                "model": "models/gemini-embedding-001",
                "outputDimensionality": 3,
                "taskType": "RETRIEVAL_DOCUMENT",
            }
            for t in ("a", "b")
        ]
    }


VERTEX = "/v1/projects/p/locations/us-central1/publishers/google"


async def test_vertex_embeds_one_text_with_embed_content(upstream: Upstream) -> None:
    payload = {
        "embedding": {"values": [0.5, 0.5]},
        "usageMetadata": {"promptTokenCount": 3, "totalTokenCount": 3},
    }
    upstream.serve(json_handler(payload))
    provider = make(upstream, VERTEX, auth="bearer")
    out = await provider.embed(EmbedRequest(["hello"], model="gemini-embedding-2"), CallContext())
    await provider.aclose()
    assert out.embeddings == [[0.5, 0.5]]
    assert out.usage.prompt_tokens == 3
    sent = upstream.requests[-1]
    assert sent.path == f"{VERTEX}/models/gemini-embedding-2:embedContent"
    assert sent.body == {"content": {"parts": [{"text": "hello"}]}}
    assert sent.headers["Authorization"] == "Bearer secret"


async def test_vertex_embeds_several_texts_in_a_batch(upstream: Upstream) -> None:
    payload = {"embeddings": [{"values": [1.0]}, {"values": [2.0]}]}
    upstream.serve(json_handler(payload))
    provider = make(upstream, VERTEX)
    out = await provider.embed(EmbedRequest(["a", "b"], model="gemini-embedding-001"), CallContext())
    await provider.aclose()
    assert out.embeddings == [[1.0], [2.0]]
    sent = upstream.requests[-1]
    assert sent.path == f"{VERTEX}/models/gemini-embedding-001:batchEmbedContents"
    assert sent.body == {
        "requests": [{"content": {"parts": [{"text": "a"}]}}, {"content": {"parts": [{"text": "b"}]}}]
    }


async def test_embedding_count_mismatch_is_malformed(upstream: Upstream) -> None:
    upstream.serve(json_handler({"embeddings": [{"values": [1.0]}]}))
    provider = make(upstream)
    with pytest.raises(MalformedResponse):
        await provider.embed(EmbedRequest(["a", "b"]), CallContext())
    await provider.aclose()


async def test_count_tokens_with_system_prompt_and_tools(upstream: Upstream) -> None:
    upstream.serve(json_handler({"totalTokens": 31}))
    provider = make(upstream)
    request = ChatRequest([Message(role="system", content="Be brief."), user("Hi")], tools=[WEATHER])
    assert await provider.count_tokens(request) == 31
    await provider.aclose()
    sent = upstream.requests[-1]
    assert sent.path == "/v1beta/models/gemini-2.5-flash:countTokens"
    inner = sent.body["generateContentRequest"]
    assert inner["model"] == "models/gemini-2.5-flash"
    assert inner["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert inner["contents"] == [{"role": "user", "parts": [{"text": "Hi"}]}]


async def test_count_tokens_on_vertex_puts_fields_at_top_level(upstream: Upstream) -> None:
    upstream.serve(json_handler({"totalTokens": 9, "totalBillableCharacters": 20}))
    provider = make(upstream, VERTEX)
    request = ChatRequest([Message(role="system", content="Be brief."), user("Hi")])
    assert await provider.count_tokens(request) == 9
    await provider.aclose()
    assert upstream.requests[-1].body == {
        "contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
    }


async def test_list_models_strips_prefix_in_one_big_page(upstream: Upstream) -> None:
    names = ["models/gemini-2.5-flash", "models/gemini-2.5-pro", "models/gemini-embedding-001"]
    upstream.serve(json_handler({"models": [{"name": n} for n in names], "nextPageToken": "unused"}))
    provider = make(upstream)
    assert await provider.list_models() == ["gemini-2.5-flash", "gemini-2.5-pro", "gemini-embedding-001"]
    result = await provider.check()
    await provider.aclose()
    assert result.success
    assert result.models == ["gemini-2.5-flash", "gemini-2.5-pro", "gemini-embedding-001"]
    assert upstream.requests[0].method == "GET"
    assert upstream.requests[0].path == "/v1beta/models"
    assert upstream.requests[0].query == {"pageSize": "1000"}


async def test_vertex_check_probes_with_a_chat(upstream: Upstream) -> None:
    upstream.serve(json_handler(ANSWER))
    provider = make(upstream, VERTEX)
    result = await provider.check()
    await provider.aclose()
    assert result.success, result.error
    assert result.models == ["gemini-2.5-flash"]
    assert upstream.requests[0].path == f"{VERTEX}/models/gemini-2.5-flash:generateContent"
    assert upstream.requests[0].body["generationConfig"] == {"maxOutputTokens": 1}


def test_wire_is_usable_on_its_own() -> None:
    wire = GoogleWire(auth="bearer")
    assert wire.auth_headers("tok") == {"Authorization": "Bearer tok"}
    assert wire.auth_headers(None) == {}
    assert wire.chat_path("models/gemini-2.5-flash", True) == (
        "/models/gemini-2.5-flash:streamGenerateContent",
        {"alt": "sse"},
    )
    resp = wire.parse_chat(json.dumps(ANSWER).encode())
    assert (resp.content, resp.finish_reason, resp.usage.total_tokens) == ("Paris.", "stop", 9)
    assert wire.parse_error(b"not json") == ("not json", None, None)
