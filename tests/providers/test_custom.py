from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from aiohttp import web

from podium import Orchestrator, RequestError, RetryPolicy
from podium.testing import FakeUpstream, SimulatedAnthropic, SimulatedOpenAI


@pytest.fixture
async def orch() -> AsyncIterator[Orchestrator]:
    async with Orchestrator(retry=RetryPolicy(max_retries=0)) as o:
        yield o


async def test_openai_format_with_endpoint_headers_and_auth_overrides(orch: Orchestrator) -> None:
    async def generate(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "id": "x1",
                "object": "chat.completion",
                "model": "house-model",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "hi there"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6},
            }
        )

    up = FakeUpstream()
    up.route("POST", "/api/gen", generate)
    async with up:
        await orch.create_provider(
            type="custom",
            name="house",
            base_url=up.url,
            apiKey="house-secret-123456",
            requestFormat="openai",
            responseFormat="openai",
            endpoints={"chatCompletion": "/api/gen"},
            customHeaders={"X-Team": "search"},
            auth_header="x-api-key",
            default_model="house-model",
        )
        r = await orch.chat("hello", provider="house")
        assert (r.content, r.usage.total_tokens, r.provider) == ("hi there", 6, "house")
        sent = up.requests[0]
        assert sent.path == "/api/gen"
        assert sent.headers["x-api-key"] == "house-secret-123456"
        assert "Authorization" not in sent.headers
        assert sent.headers["X-Team"] == "search"
        assert sent.body["messages"] == [{"role": "user", "content": "hello"}]


async def test_anthropic_format_custom_host(orch: Orchestrator) -> None:
    async with SimulatedAnthropic("proxy") as up:
        await orch.create_provider(
            type="custom",
            name="claude-proxy",
            base_url=up.base_url,
            api_key="k-1234567890abcdef",
            request_format="anthropic",
            default_model="claude-3-5-haiku-latest",
        )
        chunks = [c async for c in orch.stream("stream please")]
        assert "".join(c.delta for c in chunks) == "[proxy] you said: stream please"
        assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5
        assert up.requests[0].headers["x-api-key"] == "k-1234567890abcdef"


def _to_toy(body: dict[str, Any]) -> dict[str, Any]:
    last = [m for m in body["messages"] if m["role"] == "user"][-1]
    return {"prompt": last["content"], "max_len": body.get("max_tokens", 64), "engine": body["model"]}


def _from_toy(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": data["request_id"],
        "model": data["engine"],
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": data["output"]},
                "finish_reason": data["why"],
            }
        ],
        "usage": {
            "prompt_tokens": data["tokens"]["in"],
            "completion_tokens": data["tokens"]["out"],
            "total_tokens": data["tokens"]["in"] + data["tokens"]["out"],
        },
    }


async def toy_api() -> FakeUpstream:
    up = FakeUpstream()

    async def generate(request: web.Request) -> web.StreamResponse:
        body = up.requests[-1].body
        text = f"toy says {body['prompt']}"
        if request.query.get("stream") == "1":
            resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
            await resp.prepare(request)
            for word in text.split(" "):
                await resp.write(b"data: " + msgspec.json.encode({"piece": word + " "}) + b"\n\n")
            await resp.write(b"data: " + msgspec.json.encode({"end": True, "in": 2, "out": 3}) + b"\n\n")
            await resp.write(b"data: [DONE]\n\n")
            await resp.write_eof()
            return resp
        return web.json_response(
            {
                "request_id": "r-1",
                "engine": body["engine"],
                "output": text,
                "why": "length",
                "tokens": {"in": 2, "out": 3},
            }
        )

    up.route("POST", "/generate", generate)
    return await up.start()


async def test_code_level_adapter_chat_and_stream_without_stream_transform(orch: Orchestrator) -> None:
    orch.adapter.create_custom_adapter("toy", request_transform=_to_toy, response_transform=_from_toy)
    up = await toy_api()
    try:
        await orch.create_provider(
            type="custom",
            name="toy",
            base_url=up.url,
            request_format="toy",
            endpoints={"chat_completion": "/generate"},
            default_model="toy-1",
        )
        r = await orch.chat("ping", max_tokens=9)
        assert (r.content, r.finish_reason, r.model, r.usage.total_tokens) == (
            "toy says ping",
            "length",
            "toy-1",
            5,
        )
        assert up.requests[0].body == {"prompt": "ping", "max_len": 9, "engine": "toy-1"}
        # No stream transform: the stream is one plain request delivered as chunks, usage last.
        chunks = [c async for c in orch.stream("pong")]
        assert "".join(c.delta for c in chunks) == "toy says pong"
        assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 5
        assert "stream" not in up.requests[1].body
    finally:
        await up.stop()


async def test_code_level_adapter_with_stream_transform(orch: Orchestrator) -> None:
    def chunk(event: dict[str, Any]) -> dict[str, Any] | None:
        if event.get("end"):
            return {
                "id": "s1",
                "choices": [],
                "usage": {
                    "prompt_tokens": event["in"],
                    "completion_tokens": event["out"],
                    "total_tokens": event["in"] + event["out"],
                },
            }
        return {
            "id": "s1",
            "choices": [{"index": 0, "delta": {"content": event["piece"]}, "finish_reason": None}],
        }

    orch.adapter.create_custom_adapter(
        "toy-sse", request_transform=_to_toy, response_transform=_from_toy, stream_transform=chunk
    )
    up = await toy_api()
    try:
        await orch.create_provider(
            type="custom",
            name="toy",
            base_url=up.url,
            request_format="toy-sse",
            endpoints={"chat_completion": "/generate?stream=1"},
            default_model="toy-1",
        )
        chunks = [c async for c in orch.stream("flows")]
        assert "".join(c.delta for c in chunks) == "toy says flows "
        assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3
    finally:
        await up.stop()


async def test_unknown_format_lists_valid_ones(orch: Orchestrator) -> None:
    with pytest.raises(RequestError, match=r"unknown format 'soap'.*openai, anthropic, google, ollama"):
        await orch.create_provider(
            type="custom", name="x", base_url="http://127.0.0.1:9", request_format="soap"
        )
    with pytest.raises(RequestError, match="base_url"):
        await orch.create_provider(type="custom", name="y")


async def test_openai_compatible_embeddings_through_custom(orch: Orchestrator) -> None:
    async with SimulatedOpenAI("emb") as up:
        await orch.create_provider(
            type="custom",
            name="emb",
            base_url=up.base_url,
            api_key="k" * 20,
            request_format="openai",
            embedding_model="text-embedding-3-small",
        )
        e = await orch.embed(["a", "b"], dimensions=4)
        assert (len(e.embeddings), e.dimensions, e.model) == (2, 4, "text-embedding-3-small")
