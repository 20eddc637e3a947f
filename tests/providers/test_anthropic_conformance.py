"""Replays every recorded Anthropic interaction through the adapter over a real local HTTP server.

Expected values are read from the recordings here, independently of the adapter's parsing code. Where a
recorded request converts to a canonical request without loss, the body the adapter sends must equal the
recorded body too (after normalising the few spellings that mean the same thing).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from podium.backend import CallContext, flatten
from podium.errors import ProviderBadRequest, ProviderError, ProviderNotFound
from podium.providers.anthropic import AnthropicOptions, AnthropicProvider
from podium.providers.base import ProviderConfig
from podium.testing import ReplayServer
from podium.types import (
    ChatRequest,
    FunctionCall,
    FunctionDef,
    ImagePart,
    ImageURL,
    Message,
    NamedFunction,
    NamedToolChoice,
    TextPart,
    Tool,
    ToolCall,
)
from tests.recordings import load, params

# Recordings that cannot be replayed sensibly (none so far; each entry needs a reason).
SKIP: dict[str, str] = {}

FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
ERRORS = {400: ProviderBadRequest, 404: ProviderNotFound}
HANDLED = {"model", "messages", "system", "max_tokens", "stream", "temperature", "top_p", "stop_sequences"}
HANDLED |= {"tools", "tool_choice", "metadata"}


# --- reference reading of recorded requests ---------------------------------------------------------


class Lossy(Exception):
    """The recorded request has something the canonical request cannot express."""


def _parts(blocks: list[dict[str, Any]]) -> list[TextPart | ImagePart]:
    parts: list[TextPart | ImagePart] = []
    for b in blocks:
        if set(b) - {"type", "text", "source"}:
            raise Lossy(b["type"])
        if b["type"] == "text":
            parts.append(TextPart(b["text"]))
        elif b["type"] == "image" and b["source"]["type"] == "url":
            parts.append(ImagePart(ImageURL(b["source"]["url"])))
        elif b["type"] == "image" and b["source"]["type"] == "base64":
            src = b["source"]
            parts.append(ImagePart(ImageURL(f"data:{src['media_type']};base64,{src['data']}")))
        else:
            raise Lossy(b["type"])
    return parts


def _messages(recorded: list[dict[str, Any]]) -> list[Message]:
    out: list[Message] = []
    for m in recorded:
        content = m["content"]
        if m["role"] not in ("user", "assistant"):
            raise Lossy(m["role"])  # a mid-conversation system turn; canonical system text goes on top
        if isinstance(content, str):
            out.append(Message(role=m["role"], content=content))
            continue
        if m["role"] == "user":
            results = [b for b in content if b["type"] == "tool_result"]
            for r in results:
                if set(r) - {"type", "tool_use_id", "content", "is_error"} or r.get("is_error"):
                    raise Lossy("tool_result")
                body = r["content"]
                out.append(
                    Message(
                        role="tool",
                        tool_call_id=r["tool_use_id"],
                        content=body if isinstance(body, str) else _parts(body),
                    )
                )
            rest = [b for b in content if b["type"] != "tool_result"]
            if rest or not results:
                out.append(Message(role="user", content=_parts(rest)))
        else:
            calls = [
                ToolCall(id=b["id"], function=FunctionCall(b["name"], json.dumps(b["input"])))
                for b in content
                if b["type"] == "tool_use" and set(b) <= {"type", "id", "name", "input"}
            ]
            rest = [b for b in content if b["type"] != "tool_use"]
            if len(calls) + len(rest) != len(content):
                raise Lossy("tool_use")
            out.append(Message(role="assistant", content=_parts(rest) or None, tool_calls=calls or None))
    return out


def _first_user_text(recorded: list[dict[str, Any]]) -> str:
    for m in recorded:
        if m["role"] == "user":
            c = m["content"]
            return c if isinstance(c, str) else next((b["text"] for b in c if b["type"] == "text"), "hi")
    return "hi"


def canonical(body: dict[str, Any]) -> tuple[ChatRequest, bool]:
    """A canonical request resembling the recorded body, and whether it expresses all of it."""
    lossless = True
    try:
        messages = _messages(body["messages"])
    except Lossy:
        lossless = False
        messages = [Message(role="user", content=_first_user_text(body["messages"]))]
    system = body.get("system")
    if isinstance(system, list):
        lossless = False
        system = "".join(b["text"] for b in system)
    if system:
        messages.insert(0, Message(role="system", content=system))
    extra = {k: v for k, v in body.items() if k not in HANDLED}
    tools: list[Tool] = []
    choice: Any = None
    parallel = None
    recorded_tools = body.get("tools") or []
    if all(set(t) <= {"name", "description", "input_schema", "strict"} for t in recorded_tools):
        tools = [
            Tool(FunctionDef(t["name"], t.get("description"), t["input_schema"], t.get("strict")))
            for t in recorded_tools
        ]
        rc = body.get("tool_choice")
        if rc is not None:
            choice = {"auto": "auto", "any": "required", "none": "none"}.get(rc["type"])
            if rc["type"] == "tool":
                choice = NamedToolChoice(NamedFunction(rc["name"]))
            if "disable_parallel_tool_use" in rc:
                parallel = not rc["disable_parallel_tool_use"]
    else:  # server tools have no canonical form: sent verbatim
        extra["tools"] = recorded_tools
        if "tool_choice" in body:
            extra["tool_choice"] = body["tool_choice"]
    metadata = body.get("metadata") or {}
    request = ChatRequest(
        messages=messages,
        model=body["model"],
        max_tokens=body.get("max_tokens"),
        temperature=body.get("temperature"),
        top_p=body.get("top_p"),
        stop=body.get("stop_sequences"),
        user=metadata.get("user_id"),
        tools=tools or None,
        tool_choice=choice,
        parallel_tool_calls=parallel,
        extra=extra or None,
    )
    return request, lossless


def normalise(body: dict[str, Any]) -> dict[str, Any]:
    """Spellings that mean the same to Anthropic.

    String content is one text block, ``is_error: false`` and ``stream: false`` are defaults, and
    consecutive turns of one role are combined into one turn (as the API documents).
    """
    out = {k: v for k, v in body.items() if not (k == "stream" and v is False)}
    turns: list[dict[str, Any]] = []
    for m in body["messages"]:
        content = [{"type": "text", "text": m["content"]}] if isinstance(m["content"], str) else m["content"]
        content = [{k: v for k, v in b.items() if not (k == "is_error" and v is False)} for b in content]
        if turns and turns[-1]["role"] == m["role"]:
            turns[-1]["content"] = turns[-1]["content"] + content
        else:
            turns.append({"role": m["role"], "content": content})
    out["messages"] = turns
    return out


# --- reference reading of recorded responses ----------------------------------------------------------


def expected_usage(u: dict[str, Any]) -> tuple[int, int, int, int]:
    cached = u.get("cache_read_input_tokens") or 0
    prompt = (u.get("input_tokens") or 0) + cached + (u.get("cache_creation_input_tokens") or 0)
    completion = u.get("output_tokens") or 0
    return prompt, completion, prompt + completion, cached


def expected_from_json(b: dict[str, Any]) -> dict[str, Any]:
    blocks = b["content"]
    return {
        "text": "".join(x["text"] for x in blocks if x["type"] == "text"),
        "reasoning": "".join(x["thinking"] for x in blocks if x["type"] == "thinking"),
        "tools": [(x["name"], x["input"]) for x in blocks if x["type"] == "tool_use"],
        "finish": FINISH[b["stop_reason"]],
        "usage": expected_usage(b["usage"]),
    }


def expected_from_sse(text: str) -> dict[str, Any]:
    events = [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:")]
    usage: dict[str, Any] = {}
    kinds: dict[int, str] = {}
    tools: list[list[Any]] = []
    out: dict[str, Any] = {"text": "", "reasoning": "", "finish": None}
    for e in events:
        if e["type"] == "message_start":
            usage.update(e["message"]["usage"])
        elif e["type"] == "content_block_start":
            kinds[e["index"]] = e["content_block"]["type"]
            if e["content_block"]["type"] == "tool_use":
                tools.append([e["content_block"]["name"], ""])
        elif e["type"] == "content_block_delta":
            d = e["delta"]
            if d["type"] == "text_delta":
                out["text"] += d["text"]
            elif d["type"] == "thinking_delta":
                out["reasoning"] += d["thinking"]
            elif d["type"] == "input_json_delta" and kinds[e["index"]] == "tool_use":
                tools[-1][1] += d["partial_json"]
        elif e["type"] == "message_delta":
            out["finish"] = FINISH[e["delta"]["stop_reason"]]
            usage.update({k: v for k, v in e["usage"].items() if v is not None})
    out["tools"] = [(name, json.loads(args or "{}")) for name, args in tools]
    out["usage"] = expected_usage(usage)
    return out


# --- the replay -----------------------------------------------------------------------------------------


def _provider(rec: dict[str, Any], server: ReplayServer) -> AnthropicProvider:
    path = rec["request"]["path"]
    suffix = "/v1/messages/count_tokens" if path.endswith("/count_tokens") else "/v1/messages"
    assert path.endswith(suffix)
    beta = ["test-beta-2025-01-01"] if rec["request"]["query"] == "beta=true" else []
    config = ProviderConfig(
        name="claude", type="anthropic", base_url=server.url + path[: -len(suffix)], api_key="k"
    )
    return AnthropicProvider(config, AnthropicOptions(beta=beta))


def _check_request(rec: dict[str, Any], server: ReplayServer, lossless: bool) -> None:
    sent = server.requests[0]
    assert sent.path == rec["request"]["path"]
    query = dict(p.split("=", 1) for p in rec["request"]["query"].split("&") if p)
    assert sent.query == query
    assert sent.headers["x-api-key"] == "k"
    assert sent.headers["anthropic-version"] == "2023-06-01"
    body = rec["request"]["body"]
    if rec["request"]["path"].endswith("/count_tokens"):
        assert sent.body["model"] == body["model"]
        assert "max_tokens" not in sent.body
        return
    assert sent.body["model"] == body["model"]
    assert sent.body["max_tokens"] == body["max_tokens"]
    assert sent.body.get("stream", False) == body.get("stream", False)
    if lossless:
        assert normalise(sent.body) == normalise(body)


@pytest.mark.parametrize("path", params("anthropic"))
async def test_replay(path: Path) -> None:
    if path.stem in SKIP:
        pytest.skip(SKIP[path.stem])
    rec = load(path)
    response = rec["response"]
    request, lossless = canonical(rec["request"]["body"])
    server = await ReplayServer.from_recording(rec).start()
    provider = _provider(rec, server)
    try:
        if rec["request"]["path"].endswith("/count_tokens"):
            if response["status"] >= 400:
                with pytest.raises(ERRORS[response["status"]]):
                    await provider.count_tokens(request)
            else:
                assert await provider.count_tokens(request) == response["body_json"]["input_tokens"]
        elif response["status"] >= 400:
            with pytest.raises(ProviderError) as info:
                await provider.chat(request, CallContext())
            assert type(info.value) is ERRORS[response["status"]]
            assert info.value.upstream_status == response["status"]
            assert response["body_json"]["error"]["message"] in info.value.message
        elif rec["stream"]:
            await _check_stream(provider, request, expected_from_sse(response["body_text"]))
        else:
            await _check_chat(provider, request, expected_from_json(response["body_json"]))
        _check_request(rec, server, lossless)
    finally:
        await provider.aclose()
        await server.stop()


async def _check_chat(provider: AnthropicProvider, request: ChatRequest, want: dict[str, Any]) -> None:
    resp = await provider.chat(request, CallContext())
    assert resp.content == want["text"]
    assert (resp.reasoning or "") == want["reasoning"]
    assert [(c.function.name, c.parsed_arguments()) for c in resp.tool_calls] == want["tools"]
    assert resp.finish_reason == want["finish"]
    u = resp.usage
    assert (u.prompt_tokens, u.completion_tokens, u.total_tokens, u.cached_tokens) == want["usage"]
    assert resp.provider == "claude"


async def _check_stream(provider: AnthropicProvider, request: ChatRequest, want: dict[str, Any]) -> None:
    chunks = [c async for c in flatten(provider.stream(request, CallContext()))]
    assert "".join(c.delta for c in chunks) == want["text"]
    assert "".join(c.reasoning or "" for c in chunks) == want["reasoning"]
    calls: dict[int, list[str]] = {}
    for c in chunks:
        for d in c.tool_calls or []:
            entry = calls.setdefault(d.index, ["", ""])
            entry[0] += d.name or ""
            entry[1] += d.arguments
    assert [(name, json.loads(args)) for name, args in (calls[i] for i in sorted(calls))] == want["tools"]
    assert [c.finish_reason for c in chunks if c.finish_reason] == [want["finish"]]
    final = chunks[-1].usage
    assert final is not None
    assert (final.prompt_tokens, final.completion_tokens, final.total_tokens, final.cached_tokens) == want[
        "usage"
    ]
    assert all(c.id.startswith("msg_") for c in chunks)
