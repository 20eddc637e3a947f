"""Replay every recorded OpenAI(-compatible) interaction through the adapter over real HTTP.

Expected values are read from the recorded responses by the small reference functions below, not by
calling adapter code, then compared with what the adapter parsed.
"""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import msgspec
import pytest

from podium.backend import CallContext, flatten
from podium.errors import (
    ContextLengthExceeded,
    MalformedResponse,
    ProviderAuthError,
    ProviderBadRequest,
    ProviderError,
    ProviderNotFound,
    ProviderRateLimited,
    ProviderUnavailable,
)
from podium.providers.base import ProviderConfig
from podium.providers.openai import OpenAIOptions, OpenAIProvider
from podium.testing import ReplayServer
from podium.types import (
    ChatChunk,
    ChatRequest,
    CompletionRequest,
    EmbedRequest,
    Message,
    ResponseFormat,
    Tool,
)
from tests.recordings import load, params

ENDPOINTS = ("/chat/completions", "/completions", "/embeddings")

# Recordings that cannot be replayed sensibly, with the reason. Every other file must pass.
SKIPPED: dict[str, str] = {}

# vLLM before 0.6.2 encoded base64 embeddings as float64 (numpy's default "float"), not float32.
FLOAT64_EMBEDDINGS = {"openai-embed__vllm__openllmetry__embeddings"}

FINISH = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
    "function_call": "tool_calls",
    "eos": "stop",
}


# --- reference readings of the recorded responses ---


def ref_finish(raw: str | None, has_tools: bool) -> str:
    reason = FINISH.get(raw or "", "stop")
    return "tool_calls" if has_tools and reason == "stop" else reason


def ref_usage(u: dict[str, Any] | None) -> tuple[int, int, int, int, int]:
    """(prompt, completion, total, cached, reasoning) as the recording states them."""
    if not u:
        return (0, 0, 0, 0, 0)
    cached = (
        (u.get("prompt_tokens_details") or {}).get("cached_tokens")
        or u.get("cached_tokens")
        or u.get("num_cached_tokens")
        or u.get("prompt_cache_hit_tokens")
        or 0
    )
    reasoning = (u.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    prompt, completion = u.get("prompt_tokens") or 0, u.get("completion_tokens") or 0
    return (prompt, completion, u.get("total_tokens") or prompt + completion, cached, reasoning)


def ref_text(content: Any) -> tuple[str, str]:
    """(text, thinking) of a content string or Mistral's list of text/thinking parts."""
    if content is None:
        return "", ""
    if isinstance(content, str):
        return content, ""
    text = "".join(p.get("text") or "" for p in content if p.get("type") == "text")
    thinking = "".join(
        "".join(t.get("text") or "" for t in p.get("thinking") or [])
        for p in content
        if p.get("type") == "thinking"
    )
    return text, thinking


def ref_error_class(status: int, message: str) -> type[ProviderError]:
    if status == 429:
        return ProviderRateLimited
    if status in (401, 403):
        return ProviderAuthError
    if status == 404:
        return ProviderNotFound
    if status == 400 and "context length" in message.lower():
        return ContextLengthExceeded
    if 400 <= status < 500:
        return ProviderBadRequest
    return ProviderUnavailable


def ref_error_message(body: Any) -> str:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message") or "")
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])
    return str(body)


def ref_stream(text: str) -> dict[str, Any]:
    """Read an SSE body: text, reasoning, tool calls by index, first finish reason, last usage, errors."""
    out: dict[str, Any] = {
        "text": "",
        "reasoning": "",
        "tools": {},
        "finish": None,
        "usage": None,
        "error": None,
    }
    event = ""
    for line in text.splitlines():
        if line.startswith("event:"):
            event = line[6:].strip()
            continue
        if not line.startswith("data:"):
            if not line:
                event = ""
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            break
        chunk = json.loads(data)
        if event == "error" or chunk.get("error"):
            out["error"] = chunk["error"]
            return out
        usage = chunk.get("usage") or (chunk.get("x_groq") or {}).get("usage")
        if usage:
            out["usage"] = usage
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            piece, thinking = ref_text(delta.get("content"))
            out["text"] += piece
            out["reasoning"] += delta.get("reasoning_content") or delta.get("reasoning") or thinking
            for tc in delta.get("tool_calls") or []:
                entry = out["tools"].setdefault(tc["index"], {"name": None, "args": ""})
                fn = tc.get("function") or {}
                entry["name"] = entry["name"] or fn.get("name")
                entry["args"] += fn.get("arguments") or ""
            if choice.get("finish_reason") and out["finish"] is None:
                out["finish"] = choice["finish_reason"]
    return out


def ref_vector(value: list[float] | str, float64: bool) -> list[float]:
    if isinstance(value, list):
        return value
    raw = base64.b64decode(value)
    size, fmt = (8, "d") if float64 else (4, "f")
    return list(struct.unpack(f"<{len(raw) // size}{fmt}", raw))


# --- building the request ---


def split_path(path: str) -> tuple[str, str]:
    """(prefix, endpoint) of a recorded path, e.g. ("/openai/v1", "/chat/completions")."""
    path = path.split("#")[0]
    for endpoint in ENDPOINTS:
        if path.endswith(endpoint):
            return path[: -len(endpoint)], endpoint
    raise AssertionError(f"unexpected recorded path {path}")


def chat_request(body: dict[str, Any]) -> ChatRequest:
    try:
        messages = msgspec.convert(body["messages"], list[Message])
    except msgspec.ValidationError:  # parts the canonical type has no place for (files, audio, ...)
        messages = [Message(role="user", content="What is the capital of France?")]
    tools: list[Tool] | None = None
    extra: dict[str, Any] = {}
    if body.get("tools"):
        try:
            tools = msgspec.convert(body["tools"], list[Tool])
        except msgspec.ValidationError:  # host-specific tools (openrouter:advisor) pass through ``extra``
            extra["tools"] = body["tools"]
    response_format = None
    if body.get("response_format"):
        try:
            response_format = msgspec.convert(body["response_format"], ResponseFormat)
        except msgspec.ValidationError:
            extra["response_format"] = body["response_format"]
    return ChatRequest(
        messages=messages,
        model=body.get("model") or "test-model",
        tools=tools,
        response_format=response_format,
        extra=extra or None,
    )


def make_provider(rec: dict[str, Any], server: ReplayServer) -> OpenAIProvider:
    prefix, _ = split_path(rec["request"]["path"])
    azure = rec["host"].endswith(".openai.azure.com")
    options = OpenAIOptions(
        query_params=dict(parse_qsl(rec["request"].get("query") or "")),
        api_key_header="api-key" if azure else "authorization",
    )
    config = ProviderConfig(name="rec", type="openai", base_url=server.url + prefix, api_key="sk-test")
    return OpenAIProvider(config, options)


def response_body(rec: dict[str, Any]) -> Any:
    resp = rec["response"]
    if resp.get("body_json") is not None:
        return resp["body_json"]
    try:
        return json.loads(resp["body_text"])
    except json.JSONDecodeError:
        return None


def assert_error(exc: ProviderError, status: int, message: str, headers: dict[str, str]) -> None:
    assert type(exc) is ref_error_class(status, message), (type(exc), status, message)
    assert message in exc.message
    assert exc.provider == "rec"
    if isinstance(exc, ProviderRateLimited):
        expected = float(headers["retry-after"]) if "retry-after" in headers else None
        assert exc.retry_after == expected


# --- the replay ---


@pytest.mark.parametrize("path", params("openai"))
async def test_replay(path: Path) -> None:
    if path.stem in SKIPPED:
        pytest.skip(SKIPPED[path.stem])
    rec = load(path)
    async with ReplayServer.from_recording(rec) as server:
        provider = make_provider(rec, server)
        try:
            await replay(rec, path.stem, provider)
        finally:
            await provider.aclose()
        sent = server.requests[0]
        assert sent.path == rec["request"]["path"].split("#")[0]
        assert sent.query == dict(parse_qsl(rec["request"].get("query") or ""))
        headers = {k.lower(): v for k, v in sent.headers.items()}
        if rec["host"].endswith(".openai.azure.com"):
            assert headers["api-key"] == "sk-test"
            assert "authorization" not in headers
        else:
            assert headers["authorization"] == "Bearer sk-test"
        check_sent_body(rec["request"]["body"], sent.body, split_path(rec["request"]["path"])[1])


def check_sent_body(recorded: dict[str, Any], sent: dict[str, Any], endpoint: str) -> None:
    assert sent["model"] == recorded.get("model", "test-model")
    if endpoint == "/embeddings":
        assert sent["encoding_format"] == "float"
        return
    if endpoint == "/completions":
        return
    assert sent.get("stream", False) == bool(recorded.get("stream"))
    if recorded.get("stream"):
        assert sent["stream_options"] == {"include_usage": True}
    names = [t.get("function", {}).get("name") or t.get("type") for t in recorded.get("tools") or []]
    assert [t.get("function", {}).get("name") or t.get("type") for t in sent.get("tools") or []] == names


async def replay(rec: dict[str, Any], stem: str, provider: OpenAIProvider) -> None:
    _, endpoint = split_path(rec["request"]["path"])
    body = rec["request"]["body"]
    status = rec["response"]["status"]
    answer = response_body(rec)
    headers = rec["response"].get("headers") or {}
    ctx = CallContext()
    if status >= 400:
        call = (
            provider.embed(EmbedRequest(input=["hello"], model=body["model"]), ctx)
            if endpoint == "/embeddings"
            else provider.chat(chat_request(body), ctx)
        )
        with pytest.raises(ProviderError) as info:
            await call
        assert_error(info.value, status, ref_error_message(answer), headers)
    elif endpoint == "/embeddings":
        await replay_embed(body, answer, stem, provider)
    elif endpoint == "/completions":
        await replay_completion(body, answer, provider)
    elif rec["stream"]:
        await replay_stream(body, rec["response"]["body_text"], provider)
    else:
        await replay_chat(body, answer, provider)


async def replay_chat(body: dict[str, Any], answer: Any, provider: OpenAIProvider) -> None:
    if not isinstance(answer, dict) or not answer.get("choices"):  # not a chat completion at all
        with pytest.raises(MalformedResponse):
            await provider.chat(chat_request(body), CallContext())
        return
    resp = await provider.chat(chat_request(body), CallContext())
    message = answer["choices"][0]["message"]
    text, thinking = ref_text(message.get("content"))
    calls = [
        (tc["function"]["name"], json.loads(tc["function"]["arguments"]))
        for tc in message.get("tool_calls") or []
    ]
    assert (resp.content or "") == text
    assert [(tc.function.name, tc.parsed_arguments()) for tc in resp.tool_calls] == calls
    recorded_ids = [tc.get("id") for tc in message.get("tool_calls") or []]
    assert [tc.id for tc in resp.tool_calls] == [
        i or resp.tool_calls[n].id for n, i in enumerate(recorded_ids)
    ]
    assert all(tc.id for tc in resp.tool_calls)
    assert resp.finish_reason == ref_finish(answer["choices"][0].get("finish_reason"), bool(calls))
    u = resp.usage
    assert (
        u.prompt_tokens,
        u.completion_tokens,
        u.total_tokens,
        u.cached_tokens,
        u.reasoning_tokens,
    ) == ref_usage(answer.get("usage"))
    assert (resp.reasoning or "") == (
        message.get("reasoning_content") or message.get("reasoning") or thinking
    )
    assert resp.raw_id == (answer.get("id") or None)
    assert resp.model == (answer.get("model") or body.get("model"))
    assert resp.provider == "rec"


async def replay_stream(body: dict[str, Any], text: str, provider: OpenAIProvider) -> None:
    expected = ref_stream(text)
    chunks: list[ChatChunk] = []
    if expected["error"] is not None:
        err = expected["error"]
        code = err.get("status_code") or err.get("code")
        status = code if isinstance(code, int) else 502
        with pytest.raises(ProviderError) as info:
            await drain(provider, chat_request(body), chunks)
        assert_error(info.value, status, err["message"], {})
        assert "".join(c.delta for c in chunks) == expected["text"]
        return
    await drain(provider, chat_request(body), chunks)
    assert "".join(c.delta for c in chunks) == expected["text"]
    assert "".join(c.reasoning or "" for c in chunks) == expected["reasoning"]
    tools: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for d in chunk.tool_calls or []:
            entry = tools.setdefault(d.index, {"id": d.id, "name": d.name, "args": ""})
            assert d.index in tools and (entry["id"] == d.id or d.id is None)
            entry["args"] += d.arguments
    assert [(t["name"], json.loads(t["args"])) for _, t in sorted(tools.items())] == [
        (t["name"], json.loads(t["args"])) for _, t in sorted(expected["tools"].items())
    ]
    assert all(t["id"] for t in tools.values())
    finishes = [c.finish_reason for c in chunks if c.finish_reason]
    assert finishes == [ref_finish(expected["finish"], bool(expected["tools"]))]
    final = chunks[-1]
    assert final.usage is not None
    u = final.usage
    usage = (u.prompt_tokens, u.completion_tokens, u.total_tokens, u.cached_tokens, u.reasoning_tokens)
    assert usage == ref_usage(expected["usage"])
    assert all(c.provider == "rec" for c in chunks)


async def drain(provider: OpenAIProvider, request: ChatRequest, into: list[ChatChunk]) -> None:
    """Read a whole stream into ``into`` (which keeps what arrived before an error)."""
    async for chunk in flatten(provider.stream(request, CallContext())):
        into.append(chunk)


async def replay_embed(
    body: dict[str, Any], answer: dict[str, Any], stem: str, provider: OpenAIProvider
) -> None:
    texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
    resp = await provider.embed(EmbedRequest(input=texts, model=body["model"]), CallContext())
    data = sorted(answer["data"], key=lambda d: d["index"])
    vectors = [ref_vector(d["embedding"], stem in FLOAT64_EMBEDDINGS) for d in data]
    assert len(resp.embeddings) == len(texts) == len(vectors)
    assert resp.dimensions == len(vectors[0])
    for got, want in zip(resp.embeddings, vectors, strict=True):
        assert got == pytest.approx(want, rel=1e-6, abs=1e-9)
    usage = answer.get("usage") or {}
    assert resp.usage.total_tokens == (usage.get("total_tokens") or 0)
    assert resp.usage.prompt_tokens == (usage.get("prompt_tokens") or usage.get("total_tokens") or 0)
    assert resp.model == answer["model"]


async def replay_completion(body: dict[str, Any], answer: dict[str, Any], provider: OpenAIProvider) -> None:
    prompt = body["prompt"][0] if isinstance(body["prompt"], list) else body["prompt"]
    resp = await provider.complete(
        CompletionRequest(prompt=prompt, model=body["model"], max_tokens=body.get("max_tokens")),
        CallContext(),
    )
    choice = answer["choices"][0]
    assert resp.text == choice["text"]
    assert resp.finish_reason == ref_finish(choice["finish_reason"], False)
    u = resp.usage
    assert (
        u.prompt_tokens,
        u.completion_tokens,
        u.total_tokens,
        u.cached_tokens,
        u.reasoning_tokens,
    ) == ref_usage(answer["usage"])
    assert resp.raw_id == answer["id"]
