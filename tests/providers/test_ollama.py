"""Unit tests of the Ollama adapter against real local HTTP servers speaking Ollama's documented format."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web
from pydantic import ValidationError

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
from podium.providers.ollama import OllamaOptions, OllamaProvider, OllamaWire
from podium.providers.registry import PROVIDERS
from podium.testing import FakeUpstream
from podium.types import (
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
    Usage,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CTX = CallContext()
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="


def answer(content: str = "Hello!", **fields: Any) -> dict[str, Any]:
    """A whole /api/chat answer in Ollama's documented format."""
    return {
        "model": "llama3.2",
        "created_at": "2024-07-22T20:33:28.123648Z",
        "message": {"role": "assistant", "content": content},
        "done_reason": "stop",
        "done": True,
        "total_duration": 885095291,
        "prompt_eval_count": 26,
        "eval_count": 9,
        **fields,
    }


def json_reply(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response(payload, status=status, headers=headers)

    return handler


def ndjson_reply(lines: list[dict[str, Any]]) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "application/x-ndjson"})
        await resp.prepare(request)
        for line in lines:
            await resp.write(json.dumps(line).encode() + b"\n")
        await resp.write_eof()
        return resp

    return handler


def delta(content: str = "", **message: Any) -> dict[str, Any]:
    return {
        "model": "llama3.2",
        "message": {"role": "assistant", "content": content, **message},
        "done": False,
    }


def final(reason: str = "stop", **fields: Any) -> dict[str, Any]:
    return {
        "model": "llama3.2",
        "message": {"role": "assistant", "content": ""},
        "done": True,
        "done_reason": reason,
        "prompt_eval_count": 12,
        "eval_count": 5,
        **fields,
    }


@asynccontextmanager
async def ollama(
    routes: dict[tuple[str, str], Handler], api_key: str | None = None, timeout: float = 10.0, **options: Any
) -> AsyncIterator[tuple[FakeUpstream, OllamaProvider]]:
    up = FakeUpstream()
    for (method, path), handler in routes.items():
        up.route(method, path, handler)
    async with up:
        config = ProviderConfig(
            name="local",
            type="ollama",
            base_url=up.url,
            api_key=api_key,
            default_model="llama3.2",
            timeout=timeout,
        )
        provider = OllamaProvider(config, OllamaOptions(**options))
        try:
            yield up, provider
        finally:
            await provider.aclose()


async def sent_chat_body(request: ChatRequest, **options: Any) -> dict[str, Any]:
    async with ollama({("POST", "/api/chat"): json_reply(answer())}, **options) as (up, provider):
        await provider.chat(request, CTX)
    body: dict[str, Any] = up.requests[0].body
    return body


def user(text: str = "Hi") -> Message:
    return Message(role="user", content=text)


# --- request encoding ----------------------------------------------------------------------------


async def test_chat_body_carries_sampling_in_options_and_explicit_stream_false() -> None:
    request = ChatRequest(
        messages=[
            Message(role="system", content="Be brief."),
            Message(role="developer", content="Answer in French."),
            user("Why is the sky blue?"),
        ],
        temperature=0.2,
        top_p=0.9,
        max_tokens=64,
        stop=["\n\n"],
        seed=7,
        user="u-1",
    )
    body = await sent_chat_body(request, keep_alive="10m", options={"num_ctx": 8192, "temperature": 1.0})
    assert body == {
        "model": "llama3.2",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "system", "content": "Answer in French."},
            {"role": "user", "content": "Why is the sky blue?"},
        ],
        "stream": False,
        "options": {
            "num_ctx": 8192,
            "temperature": 0.2,
            "top_p": 0.9,
            "num_predict": 64,
            "stop": ["\n\n"],
            "seed": 7,
        },
        "keep_alive": "10m",
    }


async def test_streamed_chat_sends_stream_true() -> None:
    lines = [delta("Hi"), final()]
    async with ollama({("POST", "/api/chat"): ndjson_reply(lines)}) as (up, provider):
        [c async for c in flatten(provider.stream(ChatRequest(messages=[user()]), CTX))]
    assert up.requests[0].body["stream"] is True
    assert up.requests[0].path == "/api/chat"


async def test_numeric_keep_alive_is_sent_as_seconds() -> None:
    body = await sent_chat_body(ChatRequest(messages=[user()]), keep_alive="300")
    assert body["keep_alive"] == 300
    assert "options" not in body


async def test_multipart_text_is_joined_and_data_uri_images_become_base64() -> None:
    message = Message(
        role="user",
        content=[
            TextPart("What is in this picture?"),
            ImagePart(ImageURL(f"data:image/png;base64,{PNG}")),
            TextPart("Answer in one word."),
        ],
    )
    body = await sent_chat_body(ChatRequest(messages=[message]))
    assert body["messages"] == [
        {"role": "user", "content": "What is in this picture?\nAnswer in one word.", "images": [PNG]}
    ]


@pytest.mark.parametrize(
    ("url", "hint"),
    [
        ("https://example.com/cat.png", "cannot fetch images by URL"),
        ("data:image/svg+xml,<svg></svg>", "base64"),
    ],
)
async def test_images_ollama_cannot_take_are_refused_before_any_request(url: str, hint: str) -> None:
    message = Message(role="user", content=[TextPart("look"), ImagePart(ImageURL(url))])
    async with ollama({("POST", "/api/chat"): json_reply(answer())}) as (up, provider):
        with pytest.raises(RequestError, match=hint):
            await provider.chat(ChatRequest(messages=[message]), CTX)
    assert up.requests == []


async def test_tool_calls_are_sent_as_objects_and_tool_results_name_the_tool() -> None:
    messages = [
        user("Weather in Paris and Rome?"),
        Message(
            role="assistant",
            tool_calls=[
                ToolCall(id="call_a", function=FunctionCall("get_weather", '{"city": "Paris"}')),
                ToolCall(id="call_b", function=FunctionCall("get_time", '{"city": "Rome"}')),
            ],
        ),
        Message(role="tool", content="22C sunny", tool_call_id="call_a"),
        Message(role="tool", content="14:05", tool_call_id="call_b"),
        Message(role="tool", content="orphan", tool_call_id="call_unknown"),
    ]
    body = await sent_chat_body(ChatRequest(messages=messages))
    assert body["messages"][1:] == [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
                {"function": {"name": "get_time", "arguments": {"city": "Rome"}}},
            ],
        },
        {"role": "tool", "content": "22C sunny", "tool_name": "get_weather"},
        {"role": "tool", "content": "14:05", "tool_name": "get_time"},
        {"role": "tool", "content": "orphan"},
    ]


@pytest.mark.parametrize("arguments", ["{not json", "[1, 2]"])
async def test_tool_call_arguments_that_are_not_a_json_object_are_refused(arguments: str) -> None:
    messages = [
        user(),
        Message(role="assistant", tool_calls=[ToolCall(id="c1", function=FunctionCall("f", arguments))]),
    ]
    async with ollama({("POST", "/api/chat"): json_reply(answer())}) as (up, provider):
        with pytest.raises(RequestError, match="c1"):
            await provider.chat(ChatRequest(messages=messages), CTX)
    assert up.requests == []


WEATHER = Tool(
    FunctionDef(
        name="get_weather",
        description="Current weather",
        parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        strict=True,
    )
)
CLOCK = Tool(FunctionDef(name="get_time"))


async def test_tools_are_passed_in_openai_shape() -> None:
    body = await sent_chat_body(ChatRequest(messages=[user()], tools=[WEATHER, CLOCK], tool_choice="auto"))
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            },
        },
        {"type": "function", "function": {"name": "get_time"}},
    ]


async def test_tool_choice_none_withholds_tools_and_a_named_choice_offers_only_that_tool() -> None:
    none = await sent_chat_body(ChatRequest(messages=[user()], tools=[WEATHER, CLOCK], tool_choice="none"))
    assert "tools" not in none
    named = NamedToolChoice(NamedFunction("get_time"))
    only = await sent_chat_body(ChatRequest(messages=[user()], tools=[WEATHER, CLOCK], tool_choice=named))
    assert [t["function"]["name"] for t in only["tools"]] == ["get_time"]


async def test_a_named_tool_choice_missing_from_tools_is_refused() -> None:
    request = ChatRequest(
        messages=[user()], tools=[WEATHER], tool_choice=NamedToolChoice(NamedFunction("nope"))
    )
    async with ollama({("POST", "/api/chat"): json_reply(answer())}) as (_, provider):
        with pytest.raises(RequestError, match="nope"):
            await provider.chat(request, CTX)


async def test_response_format_maps_to_format() -> None:
    schema = {"type": "object", "properties": {"age": {"type": "integer"}}, "required": ["age"]}
    as_json = await sent_chat_body(
        ChatRequest(messages=[user()], response_format=ResponseFormat("json_object"))
    )
    assert as_json["format"] == "json"
    as_schema = await sent_chat_body(
        ChatRequest(
            messages=[user()], response_format=ResponseFormat("json_schema", JsonSchema("person", schema))
        )
    )
    assert as_schema["format"] == schema
    as_text = await sent_chat_body(ChatRequest(messages=[user()], response_format=ResponseFormat("text")))
    assert "format" not in as_text


async def test_extra_is_merged_last_and_extends_options() -> None:
    request = ChatRequest(
        messages=[user()],
        temperature=0.5,
        extra={"think": True, "keep_alive": "1h", "options": {"num_ctx": 4096}},
    )
    body = await sent_chat_body(request, keep_alive="5m", options={"top_k": 20})
    assert body["think"] is True
    assert body["keep_alive"] == "1h"
    assert body["options"] == {"top_k": 20, "temperature": 0.5, "num_ctx": 4096}


async def test_no_authorization_header_without_a_key_and_bearer_with_one() -> None:
    async with ollama({("POST", "/api/chat"): json_reply(answer())}) as (up, provider):
        await provider.chat(ChatRequest(messages=[user()]), CTX)
    assert "Authorization" not in up.requests[0].headers
    async with ollama({("POST", "/api/chat"): json_reply(answer())}, api_key="sk-cloud") as (up, provider):
        await provider.chat(ChatRequest(messages=[user()]), CTX)
    assert up.requests[0].headers["Authorization"] == "Bearer sk-cloud"


async def test_a_base_url_ending_in_api_is_accepted() -> None:
    up = FakeUpstream()
    up.route("POST", "/api/chat", json_reply(answer()))
    async with up:
        provider = OllamaProvider(ProviderConfig(name="x", type="ollama", base_url=f"{up.url}/api/"))
        try:
            result = await provider.chat(ChatRequest(messages=[user()], model="llama3.2"), CTX)
        finally:
            await provider.aclose()
    assert result.content == "Hello!"
    assert up.requests[0].path == "/api/chat"


# --- responses -----------------------------------------------------------------------------------


async def test_tool_call_answer_becomes_tool_calls_with_json_text_and_fresh_ids() -> None:
    calls = [
        {"function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}},
        {"function": {"name": "get_time", "arguments": {}}},
    ]
    reply = answer("", message={"role": "assistant", "content": "", "tool_calls": calls})
    async with ollama({("POST", "/api/chat"): json_reply(reply)}) as (_, provider):
        result = await provider.chat(ChatRequest(messages=[user()], tools=[WEATHER, CLOCK]), CTX)
    assert result.finish_reason == "tool_calls"
    assert result.content is None
    assert [c.function.name for c in result.tool_calls] == ["get_weather", "get_time"]
    assert [c.parsed_arguments() for c in result.tool_calls] == [{"city": "Paris", "unit": "celsius"}, {}]
    ids = [c.id for c in result.tool_calls]
    assert all(ids) and len(set(ids)) == 2
    assert result.usage == Usage(prompt_tokens=26, completion_tokens=9, total_tokens=35)
    assert result.provider == "local"


async def test_thinking_becomes_reasoning_and_length_is_reported() -> None:
    reply = answer(
        message={"role": "assistant", "content": "42", "thinking": "Let me count."}, done_reason="length"
    )
    async with ollama({("POST", "/api/chat"): json_reply(reply)}) as (_, provider):
        result = await provider.chat(ChatRequest(messages=[user()]), CTX)
    assert (result.content, result.reasoning, result.finish_reason) == ("42", "Let me count.", "length")


async def test_stream_with_thinking_and_tool_calls() -> None:
    lines = [
        delta("", thinking="Need the weather. "),
        delta("", thinking="Calling the tool."),
        delta("", tool_calls=[{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]),
        delta("", tool_calls=[{"function": {"name": "get_time", "arguments": {"city": "Rome"}}}]),
        final(),
    ]
    async with ollama({("POST", "/api/chat"): ndjson_reply(lines)}) as (_, provider):
        chunks = [
            c
            async for c in flatten(
                provider.stream(ChatRequest(messages=[user()], tools=[WEATHER, CLOCK]), CTX)
            )
        ]
    assert "".join(c.reasoning or "" for c in chunks) == "Need the weather. Calling the tool."
    deltas = [d for c in chunks for d in c.tool_calls or []]
    assert [(d.index, d.name, json.loads(d.arguments)) for d in deltas] == [
        (0, "get_weather", {"city": "Paris"}),
        (1, "get_time", {"city": "Rome"}),
    ]
    assert all(d.id for d in deltas)
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["tool_calls"]
    assert chunks[-1].usage == Usage(prompt_tokens=12, completion_tokens=5, total_tokens=17)
    assert {c.provider for c in chunks} == {"local"}


async def test_stream_text_in_the_final_line_is_kept() -> None:
    lines = [delta("Hello"), final(message={"role": "assistant", "content": " world"})]
    async with ollama({("POST", "/api/chat"): ndjson_reply(lines)}) as (_, provider):
        chunks = [c async for c in flatten(provider.stream(ChatRequest(messages=[user()]), CTX))]
    assert "".join(c.delta for c in chunks) == "Hello world"


async def test_an_error_line_mid_stream_raises_the_mapped_error() -> None:
    lines = [delta("Once upon"), {"error": "llama runner process has terminated: signal: killed"}]
    async with ollama({("POST", "/api/chat"): ndjson_reply(lines)}) as (_, provider):
        stream = provider.stream(ChatRequest(messages=[user()]), CTX)
        first = await anext(stream)
        with pytest.raises(ProviderUnavailable, match="runner process has terminated") as info:
            await anext(stream)
    assert [c.delta for c in first] == ["Once upon"]  # what arrived before the error is delivered
    assert info.value.provider == "local"
    assert info.value.retryable


async def test_a_stream_that_ends_before_done_is_malformed() -> None:
    lines = [delta("Once"), delta(" upon")]
    async with ollama({("POST", "/api/chat"): ndjson_reply(lines)}) as (_, provider):
        with pytest.raises(MalformedResponse, match="ended before"):
            [c async for c in flatten(provider.stream(ChatRequest(messages=[user()]), CTX))]


async def test_a_stream_line_that_is_not_json_is_malformed() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "application/x-ndjson"})
        await resp.prepare(request)
        await resp.write(json.dumps(delta("Hi")).encode() + b'\n{"model": "llama3.2", "mess\n')
        await resp.write_eof()
        return resp

    async with ollama({("POST", "/api/chat"): handler}) as (_, provider):
        with pytest.raises(MalformedResponse):
            [c async for c in flatten(provider.stream(ChatRequest(messages=[user()]), CTX))]


async def test_a_body_that_is_not_json_is_malformed() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(
            text='{"model": "llama3.2", "message": {"content": "Hel', content_type="application/json"
        )

    async with ollama({("POST", "/api/chat"): handler}) as (_, provider):
        with pytest.raises(MalformedResponse) as info:
            await provider.chat(ChatRequest(messages=[user()]), CTX)
    assert info.value.provider == "local"


async def test_an_answer_without_message_is_malformed() -> None:
    async with ollama({("POST", "/api/chat"): json_reply({"model": "llama3.2", "done": True})}) as (
        _,
        provider,
    ):
        with pytest.raises(MalformedResponse, match="no message"):
            await provider.chat(ChatRequest(messages=[user()]), CTX)


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "message", "headers", "error"),
    [
        (401, "unauthorized", {}, ProviderAuthError),
        (403, "forbidden", {}, ProviderAuthError),
        (404, 'model "llama9" not found, try pulling it first', {}, ProviderNotFound),
        (400, "input length exceeds maximum context length", {}, ContextLengthExceeded),
        (400, "registry.ollama.ai/library/gemma:2b does not support tools", {}, ProviderBadRequest),
        (429, "too many concurrent requests", {"Retry-After": "7"}, ProviderRateLimited),
        (
            500,
            "model requires more system memory (12.0 GiB) than is available (4.0 GiB)",
            {},
            ProviderUnavailable,
        ),
        (503, "server busy, please try again.  maximum pending requests exceeded", {}, ProviderUnavailable),
    ],
)
async def test_http_errors_map_to_the_error_tree(
    status: int, message: str, headers: dict[str, str], error: type[ProviderError]
) -> None:
    route = {("POST", "/api/chat"): json_reply({"error": message}, status=status, headers=headers)}
    async with ollama(route) as (_, provider):
        with pytest.raises(error) as info:
            await provider.chat(ChatRequest(messages=[user()]), CTX)
    assert type(info.value) is error
    assert message in info.value.message
    assert info.value.upstream_status == status
    assert info.value.provider == "local"
    if status == 429:
        assert isinstance(info.value, ProviderRateLimited)
        assert info.value.retry_after == 7.0


async def test_an_http_error_on_a_streamed_request_is_mapped() -> None:
    route = {
        ("POST", "/api/chat"): json_reply(
            {"error": 'model "nope" not found, try pulling it first'}, status=404
        )
    }
    async with ollama(route) as (_, provider):
        with pytest.raises(ProviderNotFound, match="try pulling it first"):
            [c async for c in flatten(provider.stream(ChatRequest(messages=[user()], model="nope"), CTX))]


async def test_a_plain_text_error_body_is_kept_as_the_message() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=404, text="404 page not found")

    async with ollama({("POST", "/api/chat"): handler}) as (_, provider):
        with pytest.raises(ProviderNotFound, match="404 page not found"):
            await provider.chat(ChatRequest(messages=[user()]), CTX)


async def test_a_slow_server_times_out() -> None:
    async with ollama({("POST", "/api/chat"): json_reply(answer())}, timeout=0.3) as (up, provider):
        up.fail(delay=2.0)
        with pytest.raises(ProviderTimeout):
            await provider.chat(ChatRequest(messages=[user()]), CTX)


async def test_a_refused_connection_is_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    provider = OllamaProvider(ProviderConfig(name="gone", type="ollama", base_url=f"http://127.0.0.1:{port}"))
    try:
        with pytest.raises(ProviderUnavailable) as info:
            await provider.chat(ChatRequest(messages=[user()], model="llama3.2"), CTX)
        assert info.value.provider == "gone"
        result = await provider.check()
    finally:
        await provider.aclose()
    assert result.success is False
    assert result.error_type == "ProviderUnavailable"


# --- embeddings, completions, models, show -------------------------------------------------------


async def test_embed_batches_through_api_embed() -> None:
    reply = {"model": "all-minilm", "embeddings": [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]], "prompt_eval_count": 11}
    route = {("POST", "/api/embed"): json_reply(reply)}
    async with ollama(route, embedding_model="all-minilm", keep_alive="2m", options={"num_ctx": 512}) as (
        up,
        provider,
    ):
        result = await provider.embed(
            EmbedRequest(input=["Why is the sky blue?", "Why is grass green?"]), CTX
        )
    assert up.requests[0].body == {
        "model": "all-minilm",
        "input": ["Why is the sky blue?", "Why is grass green?"],
        "options": {"num_ctx": 512},
        "keep_alive": "2m",
    }
    assert result.embeddings == [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]
    assert result.dimensions == 3
    assert result.usage == Usage(prompt_tokens=11, total_tokens=11)
    assert (result.model, result.provider) == ("all-minilm", "local")


async def test_embed_passes_dimensions() -> None:
    reply = {"model": "nomic", "embeddings": [[0.1, 0.2]]}
    async with ollama({("POST", "/api/embed"): json_reply(reply)}) as (up, provider):
        await provider.embed(EmbedRequest(input=["x"], model="nomic", dimensions=2), CTX)
    assert up.requests[0].body["dimensions"] == 2


async def test_legacy_embeddings_send_one_request_per_text_in_order() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        prompt = (await request.json())["prompt"]
        return web.json_response({"embedding": [float(len(prompt)), 1.0]})

    texts = ["a", "bbb", "cc"]
    async with ollama({("POST", "/api/embeddings"): handler}, embed_endpoint="embeddings") as (up, provider):
        result = await provider.embed(EmbedRequest(input=texts, model="all-minilm"), CTX)
    assert [r.body for r in up.requests] == [{"model": "all-minilm", "prompt": t} for t in texts]
    assert result.embeddings == [[1.0, 1.0], [3.0, 1.0], [2.0, 1.0]]
    assert result.provider == "local"


async def test_embed_count_mismatch_is_malformed() -> None:
    reply = {"model": "all-minilm", "embeddings": [[0.1]]}
    async with ollama({("POST", "/api/embed"): json_reply(reply)}) as (_, provider):
        with pytest.raises(MalformedResponse, match="1 embeddings for 2 inputs"):
            await provider.embed(EmbedRequest(input=["a", "b"], model="all-minilm"), CTX)


async def test_generate_body_and_answer() -> None:
    reply = {
        "model": "llama3.2",
        "response": "The sky is blue because of Rayleigh scattering.",
        "done": True,
        "done_reason": "length",
        "context": [1, 2, 3],
        "prompt_eval_count": 8,
        "eval_count": 10,
    }
    async with ollama({("POST", "/api/generate"): json_reply(reply)}, options={"num_ctx": 2048}) as (
        up,
        provider,
    ):
        result = await provider.complete(CompletionRequest(prompt="Why is the sky blue?", max_tokens=10), CTX)
    assert up.requests[0].body == {
        "model": "llama3.2",
        "prompt": "Why is the sky blue?",
        "stream": False,
        "options": {"num_ctx": 2048, "num_predict": 10},
    }
    assert (result.text, result.finish_reason) == (
        "The sky is blue because of Rayleigh scattering.",
        "length",
    )
    assert result.usage == Usage(prompt_tokens=8, completion_tokens=10, total_tokens=18)


async def test_streamed_generate_error_line_is_mapped() -> None:
    lines = [{"model": "llama3.2", "response": "Once", "done": False}, {"error": "unexpected EOF"}]
    async with ollama({("POST", "/api/generate"): ndjson_reply(lines)}) as (up, provider):
        with pytest.raises(ProviderUnavailable, match="unexpected EOF"):
            [c async for c in provider.stream_complete(CompletionRequest(prompt="Tell a story"), CTX)]
    assert up.requests[0].body["stream"] is True


async def test_streamed_generate_answered_as_one_json_object_is_read() -> None:
    # A server that ignores "stream": one application/json object, which /api/chat's parser cannot read.
    answer = {"model": "llama3.2", "response": "Hi there", "done": True, "done_reason": "stop"}
    answer |= {"prompt_eval_count": 3, "eval_count": 2}
    async with ollama({("POST", "/api/generate"): json_reply(answer)}) as (_, provider):
        stream = provider.stream_complete(CompletionRequest(prompt="Say hi"), CTX)
        chunks = [c async for c in flatten(stream)]
    assert "".join(c.delta for c in chunks) == "Hi there"
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    assert chunks[-1].usage == Usage(prompt_tokens=3, completion_tokens=2, total_tokens=5)


async def test_show_model_unknown_is_not_found() -> None:
    route = {("POST", "/api/show"): json_reply({"error": "model 'nope' not found"}, status=404)}
    async with ollama(route) as (up, provider):
        with pytest.raises(ProviderNotFound, match="not found"):
            await provider.show_model("nope")
    assert up.requests[0].body == {"model": "nope", "name": "nope"}


async def test_show_model_types_parameters() -> None:
    reply = {
        "parameters": 'num_ctx                        4096\nstop                "</s>"\ntemperature 0.7',
        "details": {"family": "llama", "parameter_size": "8.0B", "quantization_level": "Q4_0"},
        "model_info": {"general.architecture": "llama", "llama.context_length": 8192},
        "capabilities": ["completion", "tools"],
    }
    async with ollama({("POST", "/api/show"): json_reply(reply)}) as (_, provider):
        info = await provider.show_model("llama3")
    assert info["parameters"] == {"num_ctx": 4096, "stop": ["</s>"], "temperature": 0.7}
    assert info["context_length"] == 8192
    assert info["capabilities"] == ["completion", "tools"]
    assert info["details"]["parameter_size"] == "8.0B"


async def test_check_lists_models() -> None:
    reply = {
        "models": [{"name": "llama3.2:latest", "model": "llama3.2:latest"}, {"name": "all-minilm:latest"}]
    }
    async with ollama({("GET", "/api/tags"): json_reply(reply)}) as (_, provider):
        result = await provider.check()
    assert result.success is True
    assert result.models == ["llama3.2:latest", "all-minilm:latest"]


# --- configuration -------------------------------------------------------------------------------


def test_options_accept_camel_case_and_forbid_unknown_keys() -> None:
    opts = OllamaOptions.model_validate(
        {"keepAlive": "1h", "embedEndpoint": "embeddings", "options": {"num_ctx": 1}}
    )
    assert (opts.keep_alive, opts.embed_endpoint, opts.options) == ("1h", "embeddings", {"num_ctx": 1})
    with pytest.raises(ValidationError):
        OllamaOptions.model_validate({"numCtx": 4096})
    with pytest.raises(ValidationError):
        OllamaOptions.model_validate({"embedEndpoint": "vectors"})


def test_registered_as_ollama_with_the_local_default_url() -> None:
    cls = PROVIDERS.get("ollama")
    assert cls is OllamaProvider
    provider = OllamaProvider(ProviderConfig(name="o", type="ollama"))
    assert provider.http.base_url == "http://localhost:11434"


def test_the_wire_format_works_on_its_own() -> None:
    wire = OllamaWire(name="custom-ollama", embed_endpoint="embeddings")
    assert wire.framing == "ndjson"
    assert wire.auth_headers(None) == {}
    with pytest.raises(RequestError, match="one text per request"):
        wire.embed_body(EmbedRequest(input=["a", "b"]), "m")
    parser = wire.stream_parser()
    assert parser.feed("", json.dumps(delta("Hi")))[0].delta == "Hi"
    with pytest.raises(ProviderUnavailable, match="custom-ollama: boom"):
        parser.feed("", '{"error": "boom"}')
