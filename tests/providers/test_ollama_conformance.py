"""Replays every recorded Ollama interaction through the real client stack and the Ollama adapter.

Expected values are read from the recorded responses here, independently of the adapter's code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from podium.backend import CallContext
from podium.providers.base import ProviderConfig
from podium.providers.ollama import OllamaOptions, OllamaProvider
from podium.testing import ReplayServer
from podium.types import (
    ChatChunk,
    ChatRequest,
    CompletionRequest,
    EmbedRequest,
    FunctionCall,
    Message,
    ToolCall,
    Usage,
)
from tests.recordings import load, params

# Every recording of the folder is replayable; nothing is skipped.
SKIPPED: dict[str, str] = {}


def _provider(url: str, **options: Any) -> OllamaProvider:
    return OllamaProvider(
        ProviderConfig(name="ollama-rec", type="ollama", base_url=url), OllamaOptions(**options)
    )


def _canonical_messages(recorded: list[dict[str, Any]]) -> list[Message]:
    """The recorded Ollama messages as canonical (OpenAI-shaped) ones: JSON-text arguments and call ids."""
    out: list[Message] = []
    pending: list[str] = []
    for n, m in enumerate(recorded):
        if m.get("tool_calls"):
            calls = [
                ToolCall(
                    id=f"call_{n}_{i}",
                    function=FunctionCall(
                        name=c["function"]["name"], arguments=json.dumps(c["function"]["arguments"])
                    ),
                )
                for i, c in enumerate(m["tool_calls"])
            ]
            pending = [c.id for c in calls]
            out.append(Message(role=m["role"], content=m.get("content") or None, tool_calls=calls))
        elif m["role"] == "tool":
            out.append(Message(role="tool", content=m["content"], tool_call_id=pending.pop(0)))
        else:
            out.append(Message(role=m["role"], content=m["content"]))
    return out


def _expected_usage(final: dict[str, Any]) -> Usage:
    prompt, completion = final.get("prompt_eval_count", 0), final.get("eval_count", 0)
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


def _expected_finish(final: dict[str, Any]) -> str:
    if final.get("done_reason") == "length":
        return "length"
    return "tool_calls" if (final.get("message") or {}).get("tool_calls") else "stop"


def _lines(rec: dict[str, Any]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in rec["response"]["body_text"].splitlines() if line.strip()]


async def _collect(stream: Any) -> list[ChatChunk]:
    return [chunk async for batch in stream for chunk in batch]


def _check_stream(chunks: list[ChatChunk], lines: list[dict[str, Any]], text_of: Any) -> None:
    final = lines[-1]
    assert final["done"] is True
    assert "".join(c.delta for c in chunks) == "".join(text_of(line) for line in lines)
    assert [c.finish_reason for c in chunks if c.finish_reason] == [_expected_finish(final)]
    assert chunks[-1].usage == _expected_usage(final)
    assert chunks[-1].model == final["model"]
    assert len({c.id for c in chunks}) == 1  # one made-up id for the whole stream


@pytest.mark.parametrize("path", params("ollama"))
async def test_recording_replays(path: Path) -> None:
    if path.stem in SKIPPED:
        pytest.skip(SKIPPED[path.stem])
    rec = load(path)
    req, resp = rec["request"], rec["response"]
    body = req["body"]
    endpoint = req["path"]
    ctx = CallContext()
    options = {"embed_endpoint": "embeddings"} if endpoint == "/api/embeddings" else {}
    async with ReplayServer.from_recording(rec) as server:
        provider = _provider(server.url, **options)
        try:
            if endpoint == "/api/chat":
                chat = ChatRequest(messages=_canonical_messages(body["messages"]), model=body["model"])
                if rec["stream"]:
                    chunks = await _collect(provider.stream(chat, ctx))
                    _check_stream(chunks, _lines(rec), lambda line: line["message"]["content"])
                else:
                    answer = await provider.chat(chat, ctx)
                    expected = resp["body_json"]
                    assert answer.content == expected["message"]["content"]
                    assert answer.tool_calls == []
                    assert answer.finish_reason == _expected_finish(expected)
                    assert answer.usage == _expected_usage(expected)
                    assert answer.model == expected["model"]
                sent = server.requests[0].body
                assert sent["stream"] is rec["stream"]
                assert sent["model"] == body["model"]
                # The adapter sends back what the recorded client sent (plus the tool's name on results).
                tool_names = [m.pop("tool_name", None) for m in sent["messages"]]
                assert sent["messages"] == [
                    {k: v for k, v in m.items() if k != "tool_calls" or v} for m in body["messages"]
                ]
                called = [c["function"]["name"] for m in body["messages"] for c in m.get("tool_calls") or []]
                assert [n for n in tool_names if n] == called
            elif endpoint == "/api/generate":
                completion = CompletionRequest(prompt=body["prompt"], model=body["model"])
                if rec["stream"]:
                    chunks = await _collect(provider.stream_complete(completion, ctx))
                    _check_stream(chunks, _lines(rec), lambda line: line["response"])
                else:
                    done = await provider.complete(completion, ctx)
                    expected = resp["body_json"]
                    assert done.text == expected["response"]
                    assert done.finish_reason == _expected_finish(expected)
                    assert done.usage == _expected_usage(expected)
                    assert done.model == expected["model"]
                assert server.requests[0].body["stream"] is rec["stream"]
                assert server.requests[0].body["prompt"] == body["prompt"]
            elif endpoint == "/api/embeddings":
                embedded = await provider.embed(
                    EmbedRequest(input=[body["prompt"]], model=body["model"]), ctx
                )
                vector = resp["body_json"]["embedding"]
                assert len(embedded.embeddings) == 1
                assert embedded.dimensions == len(vector)
                assert embedded.embeddings[0] == pytest.approx(vector)
                assert server.requests[0].body["prompt"] == body["prompt"]
            elif endpoint == "/api/tags":
                assert await provider.list_models() == [m["name"] for m in resp["body_json"]["models"]]
                assert server.requests[0].method == "GET"
            elif endpoint == "/api/show":
                info = await provider.show_model(body["name"])
                expected = resp["body_json"]
                arch = expected["model_info"]["general.architecture"]
                assert info["details"] == expected["details"]
                assert info["context_length"] == expected["model_info"][f"{arch}.context_length"]
                assert info["license"] == expected["license"]
                assert info["template"] == expected["template"]
                pairs = [line.split(None, 1) for line in expected["parameters"].splitlines()]
                stops = [json.loads(value) for key, value in pairs if key == "stop"]
                assert stops
                assert info["parameters"]["stop"] == stops
                assert server.requests[0].body["model"] == body["name"]
            else:
                pytest.fail(f"recording {path.name} uses {endpoint}, which this test does not cover")
            assert server.requests[0].path == endpoint
        finally:
            await provider.aclose()
