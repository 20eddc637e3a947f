"""The Anthropic adapter against a real local HTTP server: request encoding, answers, streams, errors."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
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
from podium.providers.anthropic import JSON_TOOL, AnthropicOptions, AnthropicProvider, AnthropicWire
from podium.providers.base import ProviderConfig
from podium.providers.registry import PROVIDERS
from podium.testing import FakeUpstream
from podium.types import (
    ChatChunk,
    ChatRequest,
    ContentPart,
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

USAGE = {
    "input_tokens": 10,
    "output_tokens": 5,
    "cache_read_input_tokens": 0,
    "cache_creation_input_tokens": 0,
}


def message(
    content: list[dict[str, Any]], stop: str = "end_turn", usage: dict[str, Any] | None = None
) -> Any:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-test-1",
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": usage or USAGE,
    }


def sse(*events: dict[str, Any]) -> str:
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)


def start(usage: dict[str, Any] | None = None) -> dict[str, Any]:
    msg = message([], stop="", usage=usage or {"input_tokens": 10, "output_tokens": 1})
    msg["stop_reason"] = None
    return {"type": "message_start", "message": msg}


def block(index: int, **content_block: Any) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": content_block}


def delta(index: int, **d: Any) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": d}


def stop(index: int) -> dict[str, Any]:
    return {"type": "content_block_stop", "index": index}


def finish(reason: str, usage: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": None}, "usage": usage},
        {"type": "message_stop"},
    ]


def answer(
    payload: Any = None, *, status: int = 200, headers: dict[str, str] | None = None, body: str | None = None
) -> Any:
    async def handler(request: web.Request) -> web.StreamResponse:
        if body is not None:
            ctype = "text/event-stream" if body.startswith("event:") else "application/json"
            return web.Response(status=status, text=body, headers={"content-type": ctype, **(headers or {})})
        return web.json_response(
            payload if payload is not None else message([]), status=status, headers=headers
        )

    return handler


@asynccontextmanager
async def serve(
    handler: Any = None,
    *,
    path: str = "/v1/messages",
    method: str = "POST",
    timeout: float = 10.0,
    **options: Any,
) -> AsyncIterator[tuple[FakeUpstream, AnthropicProvider]]:
    up = FakeUpstream()
    up.route(method, path, handler or answer(message([{"type": "text", "text": "ok"}])))
    await up.start()
    config = ProviderConfig(
        name="claude",
        type="anthropic",
        base_url=up.url,
        api_key="sk-test",
        default_model="claude-test-1",
        timeout=timeout,
    )
    provider = AnthropicProvider(config, AnthropicOptions(**options))
    try:
        yield up, provider
    finally:
        await provider.aclose()
        await up.stop()


async def sent_body(request: ChatRequest, **options: Any) -> dict[str, Any]:
    async with serve(**options) as (up, provider):
        await provider.chat(request, CallContext())
        body: dict[str, Any] = up.requests[0].body
        return body


def ask(*messages: Message, **kwargs: Any) -> ChatRequest:
    return ChatRequest(messages=list(messages) or [Message(role="user", content="hi")], **kwargs)


# --- request encoding --------------------------------------------------------------------------------------


async def test_basic_request_headers_path_and_defaults() -> None:
    async with serve(anthropic_version="2024-01-01", beta=["a-2025", "b-2025"]) as (up, provider):
        resp = await provider.chat(ask(Message(role="user", content="Hello")), CallContext())
    sent = up.requests[0]
    assert sent.path == "/v1/messages"
    assert sent.query == {"beta": "true"}
    assert sent.headers["x-api-key"] == "sk-test"
    assert sent.headers["anthropic-version"] == "2024-01-01"
    assert sent.headers["anthropic-beta"] == "a-2025,b-2025"
    assert "authorization" not in {k.lower() for k in sent.headers}
    assert sent.body == {
        "model": "claude-test-1",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": "Hello"}],
    }
    assert resp.content == "ok"
    assert resp.provider == "claude"


async def test_no_beta_means_no_beta_header_or_query() -> None:
    async with serve() as (up, provider):
        await provider.chat(ask(), CallContext())
    assert up.requests[0].query == {}
    assert "anthropic-beta" not in {k.lower() for k in up.requests[0].headers}


async def test_system_and_developer_messages_become_top_level_system() -> None:
    body = await sent_body(
        ask(
            Message(role="system", content="Be brief."),
            Message(role="user", content="Hi"),
            Message(role="developer", content="Answer in French."),
        )
    )
    assert body["system"] == "Be brief.\n\nAnswer in French."
    assert body["messages"] == [{"role": "user", "content": "Hi"}]


async def test_sampling_parameters_stop_user_and_max_tokens() -> None:
    body = await sent_body(
        ask(temperature=0.2, top_p=0.9, stop=["END"], user="u-42", max_tokens=77, seed=3, metadata={"k": "v"})
    )
    assert body["temperature"] == 0.2
    assert body["top_p"] == 0.9
    assert body["stop_sequences"] == ["END"]
    assert body["metadata"] == {"user_id": "u-42"}  # Anthropic accepts only user_id in metadata
    assert body["max_tokens"] == 77
    assert "seed" not in body  # no Anthropic equivalent


async def test_default_max_tokens_option() -> None:
    body = await sent_body(ask(), default_max_tokens=123)
    assert body["max_tokens"] == 123


async def test_multi_part_images() -> None:
    parts: list[ContentPart] = [
        TextPart("What is in these?"),
        ImagePart(ImageURL("data:image/png;base64,iVBORw0KGgo=")),
        ImagePart(ImageURL("https://example.com/cat.jpg", detail="high")),
    ]
    body = await sent_body(ask(Message(role="user", content=parts)))
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "What is in these?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]


@pytest.mark.parametrize("url", ["ftp://example.com/a.png", "data:image/png,notbase64", "file:///etc/passwd"])
async def test_unsupported_image_urls_are_refused_before_any_request(url: str) -> None:
    async with serve() as (up, provider):
        with pytest.raises(RequestError):
            await provider.chat(ask(Message(role="user", content=[ImagePart(ImageURL(url))])), CallContext())
    assert up.requests == []


async def test_tools_and_parameterless_tool() -> None:
    tools = [
        Tool(
            FunctionDef("get_weather", "Weather for a city", {"type": "object", "properties": {"city": {}}})
        ),
        Tool(FunctionDef("now")),
    ]
    body = await sent_body(ask(tools=tools))
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": {"type": "object", "properties": {"city": {}}},
        },
        {"name": "now", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert "tool_choice" not in body


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("none", None, {"type": "none"}),
        ("required", None, {"type": "any"}),
        (NamedToolChoice(NamedFunction("now")), None, {"type": "tool", "name": "now"}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        (None, None, None),
    ],
)
async def test_tool_choice(choice: Any, parallel: bool | None, expected: dict[str, Any] | None) -> None:
    body = await sent_body(
        ask(tools=[Tool(FunctionDef("now"))], tool_choice=choice, parallel_tool_calls=parallel)
    )
    assert body.get("tool_choice") == expected


async def test_tool_calls_and_results_alternate_roles() -> None:
    conversation = ask(
        Message(role="user", content="Weather in Paris and Rome?"),
        Message(
            role="assistant",
            content="Let me look.",
            tool_calls=[
                ToolCall("toolu_1", FunctionCall("get_weather", '{"city": "Paris"}')),
                ToolCall("toolu_2", FunctionCall("get_weather", '{"city": "Rome"}')),
            ],
        ),
        Message(role="tool", tool_call_id="toolu_1", content="18C"),
        Message(role="tool", tool_call_id="toolu_2", content=[TextPart("22C")]),
        Message(role="user", content="And in short?"),
    )
    body = await sent_body(conversation)
    assert body["messages"] == [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"city": "Rome"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": [{"type": "text", "text": "22C"}],
                },
                {"type": "text", "text": "And in short?"},
            ],
        },
    ]


async def test_assistant_tool_call_without_text_has_only_tool_use() -> None:
    body = await sent_body(
        ask(
            Message(role="user", content="time?"),
            Message(role="assistant", content="", tool_calls=[ToolCall("t1", FunctionCall("now", ""))]),
            Message(role="tool", tool_call_id="t1", content="noon"),
        )
    )
    assert body["messages"][1] == {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "t1", "name": "now", "input": {}}],
    }


@pytest.mark.parametrize(
    "bad",
    [
        Message(role="assistant", tool_calls=[ToolCall("t1", FunctionCall("now", "{not json"))]),
        Message(role="assistant", tool_calls=[ToolCall("t1", FunctionCall("now", "[1, 2]"))]),
        Message(role="tool", content="no id"),
    ],
)
async def test_invalid_history_is_a_request_error(bad: Message) -> None:
    async with serve() as (up, provider):
        with pytest.raises(RequestError):
            await provider.chat(ask(Message(role="user", content="hi"), bad), CallContext())
    assert up.requests == []


SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}


async def test_json_schema_uses_native_structured_output_and_extra_merges_into_it() -> None:
    body = await sent_body(
        ask(
            response_format=ResponseFormat("json_schema", JsonSchema("city", SCHEMA)),
            extra={
                "output_config": {"effort": "low"},
                "thinking": {"type": "enabled", "budget_tokens": 1024},
            },
        )
    )
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": SCHEMA}, "effort": "low"}
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert "tools" not in body


async def test_extra_replaces_non_dict_values() -> None:
    body = await sent_body(ask(temperature=0.5, extra={"temperature": 1.0, "top_k": 5}))
    assert body["temperature"] == 1.0
    assert body["top_k"] == 5


@pytest.mark.parametrize(
    ("fmt", "options", "schema"),
    [
        (ResponseFormat("json_object"), {}, {"type": "object"}),
        (ResponseFormat("json_schema", JsonSchema("city", SCHEMA)), {"structured_output": "tool"}, SCHEMA),
    ],
)
async def test_json_through_a_forced_tool(fmt: ResponseFormat, options: dict[str, Any], schema: Any) -> None:
    reply = message(
        [{"type": "tool_use", "id": "toolu_9", "name": JSON_TOOL, "input": {"city": "Paris"}}],
        stop="tool_use",
    )
    async with serve(answer(reply), **options) as (up, provider):
        resp = await provider.chat(ask(response_format=fmt), CallContext())
    body = up.requests[0].body
    assert body["tools"][-1]["name"] == JSON_TOOL
    assert body["tools"][-1]["input_schema"] == schema
    assert body["tool_choice"] == {"type": "tool", "name": JSON_TOOL}
    assert json.loads(resp.content or "") == {"city": "Paris"}
    assert resp.tool_calls == []
    assert resp.finish_reason == "stop"


async def test_json_through_a_forced_tool_streams_as_text() -> None:
    events = sse(
        start(),
        block(0, type="tool_use", id="toolu_9", name=JSON_TOOL, input={}),
        delta(0, type="input_json_delta", partial_json='{"city": '),
        delta(0, type="input_json_delta", partial_json='"Paris"}'),
        stop(0),
        *finish("tool_use", {"output_tokens": 9}),
    )
    async with serve(answer(body=events)) as (_, provider):
        chunks = [
            c
            async for c in flatten(
                provider.stream(ask(response_format=ResponseFormat("json_object")), CallContext())
            )
        ]
    assert json.loads("".join(c.delta for c in chunks)) == {"city": "Paris"}
    assert not any(c.tool_calls for c in chunks)
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]


def test_options_accept_camel_case_and_refuse_unknown_keys() -> None:
    opts = AnthropicOptions.model_validate(
        {"anthropicVersion": "2025-01-01", "defaultMaxTokens": 50, "beta": ["x"], "structuredOutput": "tool"}
    )
    assert (opts.anthropic_version, opts.default_max_tokens, opts.beta, opts.structured_output) == (
        "2025-01-01",
        50,
        ["x"],
        "tool",
    )
    with pytest.raises(ValidationError):
        AnthropicOptions.model_validate({"apiVersion": "x"})


def test_registry_and_class_attributes() -> None:
    assert PROVIDERS.get("anthropic") is AnthropicProvider
    assert AnthropicProvider.kind == "anthropic"
    assert AnthropicProvider.default_base_url == "https://api.anthropic.com"


def test_wire_is_reusable_with_its_own_paths() -> None:
    wire = AnthropicWire(messages_path="/gw/anthropic/v1/messages", beta=["x"])
    assert wire.chat_path("m", True) == ("/gw/anthropic/v1/messages", {"beta": "true"})
    assert wire.count_tokens_path() == ("/gw/anthropic/v1/messages/count_tokens", {"beta": "true"})
    assert wire.models_path() == "/gw/anthropic/v1/models"
    assert AnthropicWire(messages_path="/chat").models_path() is None
    assert wire.auth_headers(None) == {"anthropic-version": "2023-06-01", "anthropic-beta": "x"}


async def test_gateway_prefix_in_base_url() -> None:
    up = FakeUpstream()
    up.route("POST", "/anthropic/v1/messages", answer(message([{"type": "text", "text": "via gateway"}])))
    await up.start()
    config = ProviderConfig(name="gw", type="anthropic", base_url=f"{up.url}/anthropic/", default_model="m")
    provider = AnthropicProvider(config)
    try:
        resp = await provider.chat(ask(), CallContext())
    finally:
        await provider.aclose()
        await up.stop()
    assert resp.content == "via gateway"
    assert up.requests[0].path == "/anthropic/v1/messages"


# --- answers ---------------------------------------------------------------------------------------------


async def test_answer_with_thinking_tools_and_server_tools() -> None:
    reply = message(
        [
            {"type": "thinking", "thinking": "Let me think.", "signature": "sig"},
            {"type": "redacted_thinking", "data": "xxx"},
            {"type": "server_tool_use", "id": "srv_1", "name": "web_search", "input": {"query": "news"}},
            {
                "type": "web_search_tool_result",
                "tool_use_id": "srv_1",
                "content": [{"type": "web_search_result"}],
            },
            {"type": "text", "text": "Found it", "citations": [{"type": "web_search_result_location"}]},
            {"type": "text", "text": ". Calling tools."},
            {"type": "tool_use", "id": "toolu_a", "name": "lookup", "input": {"q": "x", "n": 2}},
            {"type": "tool_use", "id": "toolu_b", "name": "now", "input": {}},
        ],
        stop="tool_use",
        usage={
            "input_tokens": 100,
            "cache_read_input_tokens": 1000,
            "cache_creation_input_tokens": 50,
            "output_tokens": 40,
            "output_tokens_details": {"thinking_tokens": 12},
        },
    )
    async with serve(answer(reply)) as (_, provider):
        resp = await provider.chat(ask(), CallContext())
    assert resp.content == "Found it. Calling tools."
    assert resp.reasoning == "Let me think."
    assert [(c.id, c.function.name, c.parsed_arguments()) for c in resp.tool_calls] == [
        ("toolu_a", "lookup", {"q": "x", "n": 2}),
        ("toolu_b", "now", {}),
    ]
    assert resp.finish_reason == "tool_calls"
    assert resp.usage.prompt_tokens == 1150
    assert resp.usage.cached_tokens == 1000
    assert resp.usage.completion_tokens == 40
    assert resp.usage.total_tokens == 1190
    assert resp.usage.reasoning_tokens == 12
    assert resp.metadata["server_tool_calls"] == [
        {"type": "server_tool_use", "id": "srv_1", "name": "web_search", "input": {"query": "news"}}
    ]
    assert resp.raw_id == "msg_1"
    assert resp.model == "claude-test-1"


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
    ],
)
async def test_stop_reasons(reason: str, expected: str) -> None:
    async with serve(answer(message([{"type": "text", "text": "x"}], stop=reason))) as (_, provider):
        resp = await provider.chat(ask(), CallContext())
    assert resp.finish_reason == expected


# --- streams -----------------------------------------------------------------------------------------------


async def collect(provider: AnthropicProvider, request: ChatRequest | None = None) -> list[ChatChunk]:
    return [c async for c in flatten(provider.stream(request or ask(), CallContext()))]


async def test_stream_text_thinking_tools_and_server_tools() -> None:
    events = sse(
        start(
            {
                "input_tokens": 20,
                "cache_read_input_tokens": 100,
                "cache_creation_input_tokens": 0,
                "output_tokens": 1,
            }
        ),
        {"type": "ping"},
        block(0, type="thinking", thinking="", signature=""),
        delta(0, type="thinking_delta", thinking="Hmm, "),
        delta(0, type="thinking_delta", thinking="tools."),
        delta(0, type="signature_delta", signature="abc"),
        stop(0),
        block(1, type="server_tool_use", id="srv_1", name="web_search", input={}),
        delta(1, type="input_json_delta", partial_json='{"query": "x"}'),
        stop(1),
        block(2, type="web_search_tool_result", tool_use_id="srv_1", content=[]),
        stop(2),
        block(3, type="text", text=""),
        delta(3, type="text_delta", text="Checking"),
        delta(3, type="citations_delta", citation={"type": "web_search_result_location"}),
        delta(3, type="text_delta", text=" now."),
        stop(3),
        block(4, type="tool_use", id="toolu_a", name="lookup", input={}),
        delta(4, type="input_json_delta", partial_json=""),
        delta(4, type="input_json_delta", partial_json='{"q": '),
        {"type": "ping"},
        delta(4, type="input_json_delta", partial_json='"x"}'),
        stop(4),
        block(5, type="tool_use", id="toolu_b", name="now", input={}),
        stop(5),
        *finish("tool_use", {"output_tokens": 30}),
    )
    async with serve(answer(body=events)) as (up, provider):
        chunks = await collect(provider)
    assert up.requests[0].body["stream"] is True
    assert "".join(c.delta for c in chunks) == "Checking now."
    assert "".join(c.reasoning or "" for c in chunks) == "Hmm, tools."
    deltas = [d for c in chunks for d in c.tool_calls or []]
    assert {d.index for d in deltas} == {0, 1}  # tool order, not content block index
    first = [d for d in deltas if d.id]
    assert [(d.index, d.id, d.name) for d in first] == [(0, "toolu_a", "lookup"), (1, "toolu_b", "now")]
    assert json.loads("".join(d.arguments for d in deltas if d.index == 0)) == {"q": "x"}
    assert json.loads("".join(d.arguments for d in deltas if d.index == 1)) == {}
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["tool_calls"]
    final = chunks[-1].usage
    assert final is not None
    assert (final.prompt_tokens, final.completion_tokens, final.total_tokens, final.cached_tokens) == (
        120,
        30,
        150,
        100,
    )
    assert {c.id for c in chunks} == {"msg_1"}
    assert {c.model for c in chunks} == {"claude-test-1"}


async def test_stream_usage_from_message_delta_overrides_message_start() -> None:
    events = sse(
        start({"input_tokens": 5, "output_tokens": 1}),
        block(0, type="text", text=""),
        delta(0, type="text_delta", text="hi"),
        stop(0),
        *finish("max_tokens", {"input_tokens": 7, "cache_read_input_tokens": 3, "output_tokens": 16}),
    )
    async with serve(answer(body=events)) as (_, provider):
        chunks = await collect(provider)
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["length"]
    final = chunks[-1].usage
    assert final is not None
    assert (final.prompt_tokens, final.completion_tokens, final.cached_tokens) == (10, 16, 3)


@pytest.mark.parametrize(
    ("kind", "error", "status"),
    [
        ("overloaded_error", ProviderUnavailable, 529),
        ("api_error", ProviderUnavailable, 500),
        ("rate_limit_error", ProviderRateLimited, 429),
        ("invalid_request_error", ProviderBadRequest, 400),
        ("authentication_error", ProviderAuthError, 401),
        ("permission_error", ProviderAuthError, 403),
        ("not_found_error", ProviderNotFound, 404),
        ("request_too_large", ProviderBadRequest, 413),
    ],
)
async def test_stream_error_event(kind: str, error: type[ProviderError], status: int) -> None:
    events = sse(
        start(),
        block(0, type="text", text=""),
        delta(0, type="text_delta", text="partial"),
        {"type": "error", "error": {"type": kind, "message": "Something happened"}},
    )
    got: list[str] = []

    async def consume(provider: AnthropicProvider) -> None:
        async for chunk in flatten(provider.stream(ask(), CallContext())):
            got.append(chunk.delta)

    async with serve(answer(body=events)) as (_, provider):
        with pytest.raises(ProviderError) as info:
            await consume(provider)
    assert type(info.value) is error
    assert info.value.upstream_status == status
    assert info.value.provider == "claude"
    assert "Something happened" in info.value.message
    assert "".join(got) == "partial"


async def test_truncated_stream_is_malformed() -> None:
    events = sse(start(), block(0, type="text", text=""), delta(0, type="text_delta", text="cut"))
    async with serve(answer(body=events)) as (_, provider):
        with pytest.raises(MalformedResponse):
            await collect(provider)


async def test_stream_with_invalid_event_json_is_malformed() -> None:
    body = "event: message_start\ndata: {not json\n\n"
    async with serve(answer(body=body + "event: ping\ndata: {}\n\n")) as (_, provider):
        with pytest.raises(MalformedResponse):
            await collect(provider)


async def test_stream_answered_with_plain_json() -> None:
    async with serve(answer(message([{"type": "text", "text": "whole"}], stop="max_tokens"))) as (
        _,
        provider,
    ):
        chunks = await collect(provider)
    assert "".join(c.delta for c in chunks) == "whole"
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["length"]
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 15


# --- errors ------------------------------------------------------------------------------------------------


def err(kind: str, text: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": text}, "request_id": "req_1"}


@pytest.mark.parametrize(
    ("status", "payload", "error"),
    [
        (401, err("authentication_error", "invalid x-api-key"), ProviderAuthError),
        (403, err("permission_error", "not allowed"), ProviderAuthError),
        (404, err("not_found_error", "model: claude-nope"), ProviderNotFound),
        (
            400,
            err("invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"),
            ContextLengthExceeded,
        ),
        (400, err("invalid_request_error", "messages: roles must alternate"), ProviderBadRequest),
        (
            413,
            err("request_too_large", "Request exceeds the maximum allowed number of bytes."),
            ProviderBadRequest,
        ),
        (500, err("api_error", "Internal server error"), ProviderUnavailable),
        (503, err("api_error", "unavailable"), ProviderUnavailable),
        (529, err("overloaded_error", "Overloaded"), ProviderUnavailable),
    ],
)
async def test_http_errors(status: int, payload: dict[str, Any], error: type[ProviderError]) -> None:
    async with serve(answer(payload, status=status)) as (_, provider):
        with pytest.raises(ProviderError) as info:
            await provider.chat(ask(), CallContext())
    assert type(info.value) is error
    assert info.value.upstream_status == status
    assert payload["error"]["message"] in info.value.message
    if status == 529:
        assert info.value.code == "provider_overloaded"
        assert info.value.retryable


async def test_rate_limited_with_retry_after() -> None:
    headers = {"retry-after": "7", "anthropic-ratelimit-requests-remaining": "0"}
    async with serve(answer(err("rate_limit_error", "slow down"), status=429, headers=headers)) as (
        _,
        provider,
    ):
        with pytest.raises(ProviderRateLimited) as info:
            await provider.chat(ask(), CallContext())
    assert info.value.retry_after == 7.0
    assert info.value.rate_limit_headers == {"anthropic-ratelimit-requests-remaining": "0"}


async def test_stream_http_error_before_events() -> None:
    async with serve(answer(err("overloaded_error", "Overloaded"), status=529)) as (_, provider):
        with pytest.raises(ProviderUnavailable):
            await collect(provider)


async def test_non_json_error_body_keeps_its_text() -> None:
    async with serve(answer(body="<html>Bad Gateway</html>", status=502)) as (_, provider):
        with pytest.raises(ProviderUnavailable) as info:
            await provider.chat(ask(), CallContext())
    assert "Bad Gateway" in info.value.message


@pytest.mark.parametrize(
    "body", ['{"id": "msg_1", "content": [', '{"id": "msg_1", "type": "message"}', "[1, 2]"]
)
async def test_malformed_answers(body: str) -> None:
    async with serve(answer(body=body)) as (_, provider):
        with pytest.raises(MalformedResponse):
            await provider.chat(ask(), CallContext())


async def test_timeout() -> None:
    async def slow(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(2)
        return web.json_response(message([]))

    async with serve(slow, timeout=0.2) as (_, provider):
        with pytest.raises(ProviderTimeout):
            await provider.chat(ask(), CallContext())


async def test_connection_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = ProviderConfig(
        name="claude", type="anthropic", base_url=f"http://127.0.0.1:{port}", default_model="m"
    )
    provider = AnthropicProvider(config)
    try:
        with pytest.raises(ProviderUnavailable):
            await provider.chat(ask(), CallContext())
    finally:
        await provider.aclose()


# --- count_tokens and models -----------------------------------------------------------------------------


async def test_count_tokens_sends_only_accepted_fields() -> None:
    handler = answer({"input_tokens": 321})
    async with serve(handler, path="/v1/messages/count_tokens", beta=["x"]) as (up, provider):
        n = await provider.count_tokens(
            ask(
                Message(role="system", content="sys"),
                Message(role="user", content="hi"),
                tools=[Tool(FunctionDef("now"))],
                temperature=0.3,
                stop=["x"],
                max_tokens=5,
            )
        )
    assert n == 321
    sent = up.requests[0]
    assert sent.query == {"beta": "true"}
    assert sent.body == {
        "model": "claude-test-1",
        "messages": [{"role": "user", "content": "hi"}],
        "system": "sys",
        "tools": [{"name": "now", "input_schema": {"type": "object", "properties": {}}}],
    }


async def test_count_tokens_error() -> None:
    handler = answer(err("not_found_error", "model: nope"), status=404)
    async with serve(handler, path="/v1/messages/count_tokens") as (_, provider):
        with pytest.raises(ProviderNotFound):
            await provider.count_tokens(ask())


async def test_list_models_follows_pages_and_check_uses_it() -> None:
    async def models(request: web.Request) -> web.StreamResponse:
        if request.query.get("after_id") == "m2":
            return web.json_response({"data": [{"id": "m3"}], "has_more": False, "last_id": "m3"})
        return web.json_response({"data": [{"id": "m1"}, {"id": "m2"}], "has_more": True, "last_id": "m2"})

    async with serve(models, path="/v1/models", method="GET") as (up, provider):
        assert await provider.list_models() == ["m1", "m2", "m3"]
        result = await provider.check()
    assert result.success
    assert result.models == ["m1", "m2", "m3"]
    assert up.requests[0].headers["x-api-key"] == "sk-test"


async def test_check_reports_a_bad_key() -> None:
    handler = answer(err("authentication_error", "invalid x-api-key"), status=401)
    async with serve(handler, path="/v1/models", method="GET") as (_, provider):
        result = await provider.check()
    assert not result.success
    assert result.error_type == "ProviderAuthError"


def test_wire_alone_leaves_the_provider_name_to_the_transport() -> None:
    parser = AnthropicWire().stream_parser()
    with pytest.raises(ProviderUnavailable) as info:
        parser.feed(
            "error", json.dumps({"type": "error", "error": {"type": "overloaded_error", "message": "Busy"}})
        )
    assert info.value.provider == ""
    assert info.value.upstream_status == 529
    assert "Busy" in info.value.message
