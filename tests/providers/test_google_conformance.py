"""Replays every recorded Gemini API / Vertex AI interaction through the google adapter.

Expected values are read from the recorded responses here, with a small reference reading of the JSON,
independently of the adapter's parsing code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from podium.backend import CallContext, flatten
from podium.errors import (
    ProviderAuthError,
    ProviderBadRequest,
    ProviderError,
    ProviderNotFound,
    ProviderRateLimited,
)
from podium.providers.base import ProviderConfig
from podium.providers.google import GoogleProvider
from podium.testing import ReplayServer
from podium.types import (
    ChatRequest,
    EmbedRequest,
    FunctionDef,
    ImagePart,
    ImageURL,
    Message,
    TextPart,
    Tool,
    ToolCall,
)
from podium.types import FunctionCall as CanonicalCall
from tests.recordings import load, params

# Not a single recording needs skipping: every file is the Gemini API or Vertex AI (or a gateway in front of
# Vertex AI, whose path keeps the Vertex shape).
SKIPPED: dict[str, str] = {}

FILTER_REASONS = {
    "SAFETY",
    "RECITATION",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "IMAGE_SAFETY",
    "MODEL_ARMOR",
}


# --- reference reading of recorded responses


def expected_usage(meta: dict[str, Any] | None) -> tuple[int, int, int, int, int]:
    meta = meta or {}
    prompt = meta.get("promptTokenCount", 0) + meta.get("toolUsePromptTokenCount", 0)
    completion = meta.get("candidatesTokenCount", 0) + meta.get("thoughtsTokenCount", 0)
    total = meta.get("totalTokenCount", prompt + completion)
    return (
        prompt,
        completion,
        total,
        meta.get("cachedContentTokenCount", 0),
        meta.get("thoughtsTokenCount", 0),
    )


def expected_finish(raw: str | None, has_calls: bool) -> str:
    if raw in FILTER_REASONS:
        return "content_filter"
    if raw == "MAX_TOKENS":
        return "length"
    return "tool_calls" if has_calls else "stop"


def read_answer(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Text, thoughts, calls, finish reason and usage of one answer (one object, or stream events)."""
    text, thoughts, calls, finish, usage, blocked = "", "", [], None, None, False
    for ev in events:
        usage = ev.get("usageMetadata", usage)
        cands = ev.get("candidates") or []
        if not cands:
            blocked = blocked or bool((ev.get("promptFeedback") or {}).get("blockReason"))
            continue
        cand = cands[0]
        for part in (cand.get("content") or {}).get("parts", []):
            if "functionCall" in part:
                calls.append((part["functionCall"]["name"], part["functionCall"].get("args") or {}))
            elif part.get("thought"):
                thoughts += part.get("text", "")
            else:
                text += part.get("text", "")
        finish = cand.get("finishReason", finish)
    reason = "content_filter" if blocked else expected_finish(finish, bool(calls))
    return {
        "text": text,
        "thoughts": thoughts,
        "calls": calls,
        "finish": reason,
        "usage": expected_usage(usage),
    }


def stream_events(body: str) -> list[dict[str, Any]]:
    if body.lstrip().startswith("["):
        return list(json.loads(body))
    blocks = body.replace("\r\n", "\n").split("\n\n")
    return [json.loads(b.strip()[len("data:") :]) for b in blocks if b.strip().startswith("data:")]


def expected_error(status: int, error: dict[str, Any]) -> type[ProviderError]:
    reasons = {d.get("reason") for d in error.get("details", [])}
    if "API_KEY_INVALID" in reasons:
        return ProviderAuthError
    return {429: ProviderRateLimited, 404: ProviderNotFound, 400: ProviderBadRequest}[status]


# --- canonical requests resembling the recorded ones


def to_messages(body: dict[str, Any]) -> list[Message]:
    system = body.get("systemInstruction") or body.get("system_instruction")
    messages = []
    if system:
        messages.append(Message(role="system", content="".join(p.get("text", "") for p in system["parts"])))
    names: dict[str, str] = {}
    for turn in body.get("contents", []):
        parts, calls = [], []
        for p in turn["parts"]:
            call = p.get("functionCall") or p.get("function_call")
            result = p.get("functionResponse") or p.get("function_response")
            blob = p.get("inlineData") or p.get("inline_data")
            file = p.get("fileData") or p.get("file_data")
            if call:
                names[call["id"]] = call["name"]
                calls.append(
                    ToolCall(id=call["id"], function=CanonicalCall(call["name"], json.dumps(call["args"])))
                )
            elif result:
                messages.append(
                    Message(role="tool", tool_call_id=result["id"], content=json.dumps(result["response"]))
                )
            elif blob:
                mime = blob.get("mimeType") or blob.get("mime_type")
                parts.append(ImagePart(ImageURL(f"data:{mime};base64,{blob['data']}")))
            elif file:
                parts.append(ImagePart(ImageURL(file.get("fileUri") or file.get("file_uri"))))
            elif p.get("text"):
                parts.append(TextPart(p["text"]))
        role = "assistant" if turn.get("role") == "model" else "user"
        if parts or calls:
            messages.append(Message(role=role, content=parts or None, tool_calls=calls or None))
    return messages


def to_tools(body: dict[str, Any]) -> list[Tool] | None:
    tools = []
    for group in body.get("tools") or []:
        for fd in group.get("functionDeclarations", []):
            schema = (
                fd.get("parametersJsonSchema") or fd.get("parameters_json_schema") or fd.get("parameters")
            )
            tools.append(Tool(FunctionDef(fd["name"], fd.get("description"), schema)))
    return tools or None


def part_kinds(contents: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    """Role and part kinds of each turn, consecutive same-role turns merged (the adapter merges them)."""
    aliases = {
        "function_call": "functionCall",
        "function_response": "functionResponse",
        "inline_data": "inlineData",
        "file_data": "fileData",
    }
    kinds = {"functionCall", "functionResponse", "inlineData", "fileData", "text"}
    merged: list[tuple[str, list[str]]] = []
    for turn in contents:
        found = [
            next(aliases.get(k, k) for k in p if aliases.get(k, k) in kinds)
            for p in turn["parts"]
            if any(aliases.get(k, k) in kinds for k in p) and p.get("text") != ""
        ]
        if turn["role"] == "model":  # an assistant message's text is sent as one part
            found = [k for i, k in enumerate(found) if k != "text" or "text" not in found[:i]]
        if not found:
            continue
        if merged and merged[-1][0] == turn["role"]:
            merged[-1][1].extend(found)
        else:
            merged.append((turn["role"], found))
    return merged


def provider_for(server: ReplayServer, rec: dict[str, Any]) -> tuple[GoogleProvider, str]:
    path: str = rec["request"]["path"]
    prefix = path[: path.index("/models")]
    config = ProviderConfig(
        name="gemini", type="google", base_url=server.url + prefix, api_key="k", timeout=10
    )
    model = path[path.index("/models") :].removeprefix("/models").strip("/").split(":")[0]
    return GoogleProvider(config), model


# --- the replay


@pytest.mark.parametrize("path", params("google"))
async def test_recording(path: Path) -> None:
    if path.stem in SKIPPED:
        pytest.skip(SKIPPED[path.stem])
    rec = load(path)
    req, res = rec["request"], rec["response"]
    body = req["body"] or {}
    server = ReplayServer.from_recording(rec)
    async with server:
        provider, model = provider_for(server, rec)
        try:
            if req["method"] == "GET":
                await check_models(provider, res)
            elif req["path"].endswith(":countTokens"):
                count = await provider.count_tokens(ChatRequest(to_messages(body), model=model))
                assert count == res["body_json"]["totalTokens"]
                assert server.requests[0].body == body
            elif req["path"].endswith(("EmbedContents", ":embedContent")):
                await check_embed(provider, model, body, res, server)
            else:
                await check_chat(
                    provider, model, body, res, server, stream="streamGenerateContent" in req["path"]
                )
        finally:
            await provider.aclose()
        assert server.requests[0].path == req["path"]


async def drain(provider: GoogleProvider, request: ChatRequest) -> None:
    async for _ in flatten(provider.stream(request, CallContext())):
        pass


async def check_models(provider: GoogleProvider, res: dict[str, Any]) -> None:
    models = await provider.list_models()
    assert models == [m["name"].removeprefix("models/") for m in res["body_json"]["models"]]


async def check_embed(
    provider: GoogleProvider, model: str, body: dict[str, Any], res: dict[str, Any], server: ReplayServer
) -> None:
    items = body.get("requests") or [body]
    texts = [t["text"] for item in items for t in item["content"]["parts"]]
    dims = items[0].get("outputDimensionality")
    request = EmbedRequest(input=texts, model=model, dimensions=dims)
    if res["status"] >= 400:
        with pytest.raises(expected_error(res["status"], res["body_json"]["error"])):
            await provider.embed(request, CallContext())
        return
    out = await provider.embed(request, CallContext())
    vectors = [e["values"] for e in res["body_json"].get("embeddings", [])] or [
        res["body_json"]["embedding"]["values"]
    ]
    assert len(out.embeddings) == len(vectors)
    assert out.dimensions == len(vectors[0])
    assert out.embeddings == vectors
    sent = server.requests[0].body
    sent_items = sent.get("requests") or [sent]
    assert [i["content"]["parts"][0]["text"] for i in sent_items] == texts
    assert all(i.get("outputDimensionality") == dims for i in sent_items)


async def check_chat(
    provider: GoogleProvider,
    model: str,
    body: dict[str, Any],
    res: dict[str, Any],
    server: ReplayServer,
    *,
    stream: bool,
) -> None:
    gen = body.get("generationConfig") or {}
    request = ChatRequest(
        to_messages(body),
        model=model,
        tools=to_tools(body),
        max_tokens=gen.get("maxOutputTokens"),
        stop=gen.get("stopSequences"),
        temperature=gen.get("temperature"),
    )
    if res["status"] >= 400:
        with pytest.raises(expected_error(res["status"], res["body_json"]["error"])) as info:
            await (drain(provider, request) if stream else provider.chat(request, CallContext()))
        if isinstance(info.value, ProviderRateLimited):
            assert info.value.retry_after is None  # the recording has neither header nor RetryInfo
        return
    if stream:
        events = stream_events(res["body_text"])
        want = read_answer(events)
        text, thoughts, calls, finish, usage = "", "", [], None, None
        async for chunk in flatten(provider.stream(request, CallContext())):
            text += chunk.delta
            thoughts += chunk.reasoning or ""
            calls += [(c.name, json.loads(c.arguments)) for c in chunk.tool_calls or []]
            finish = chunk.finish_reason or finish
            usage = chunk.usage or usage
        assert usage is not None
        got = {"text": text, "thoughts": thoughts, "calls": calls, "finish": finish}
    else:
        want = read_answer([res["body_json"]])
        resp = await provider.chat(request, CallContext())
        usage = resp.usage
        got = {
            "text": resp.content or "",
            "thoughts": resp.reasoning or "",
            "calls": [(c.function.name, c.parsed_arguments()) for c in resp.tool_calls],
            "finish": resp.finish_reason,
        }
        assert all(c.id for c in resp.tool_calls)
    sent = server.requests[0]
    assert part_kinds(sent.body["contents"]) == part_kinds(body["contents"])
    for key in ("maxOutputTokens", "stopSequences", "temperature"):
        assert sent.body.get("generationConfig", {}).get(key) == gen.get(key)
    assert sent.query == ({"alt": "sse"} if stream else {})
    assert got == {k: want[k] for k in got}
    u = usage
    assert (
        u.prompt_tokens,
        u.completion_tokens,
        u.total_tokens,
        u.cached_tokens,
        u.reasoning_tokens,
    ) == want["usage"]
