"""podium in front of servers replaying real recorded provider traffic, driven by the official SDKs."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anthropic
import openai

from podium.orchestrator import Orchestrator
from podium.server import create_app
from podium.testing import ReplayServer
from tests.recordings import load, recordings_dir
from tests.server.live import authenticator, serve, token

TOOL_FN = {
    "type": "function",
    "function": {"name": "get_temperature", "parameters": {"type": "object", "properties": {}}},
}


@asynccontextmanager
async def replaying(provider: str, name: str, kind: str = "openai") -> AsyncIterator[str]:
    folder = recordings_dir()
    assert folder is not None, "set PODIUM_RECORDINGS"
    async with ReplayServer.from_recording(load(folder / provider / name)) as up:
        orch = Orchestrator()
        base = f"{up.url}/v1" if kind == "openai" else up.url
        await orch.create_provider(
            type=kind, name="rec", tenant="acme", base_url=base, api_key="sk-x", default_model="m"
        )
        try:
            async with serve(create_app(orch, authenticator=authenticator())) as url:
                yield url
        finally:
            await orch.aclose()


async def test_tool_call_round_trips_through_the_openai_sdk() -> None:
    async with replaying("openai", "openai-chat__openai__pydantic-ai__tools-call.json") as url:
        async with openai.AsyncOpenAI(
            base_url=f"{url}/v1", api_key=token("user", "acme"), max_retries=0
        ) as c:
            resp = await c.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "temperature in Tokyo?"}], tools=[TOOL_FN]
            )
    call = resp.choices[0].message.tool_calls[0]
    assert resp.choices[0].finish_reason == "tool_calls"
    assert call.id == "call_bhZkmIKKItNGJ41whHUHB7p9"
    assert call.function.name == "get_temperature"
    assert json.loads(call.function.arguments) == {"city": "Tokyo"}
    assert resp.usage is not None and resp.usage.total_tokens == 65


async def test_streamed_tool_call_fragments_reassemble() -> None:
    name = "openai-chat-stream__openai__llm__stream-tools-call-ratelimit-headers.json"
    async with replaying("openai", name) as url:
        async with openai.AsyncOpenAI(
            base_url=f"{url}/v1", api_key=token("user", "acme"), max_retries=0
        ) as c:
            stream = await c.chat.completions.create(
                model="m",
                messages=[{"role": "user", "content": "1231 * 2331?"}],
                tools=[TOOL_FN],
                stream=True,
            )
            chunks = [ch async for ch in stream]
    parts = [tc for ch in chunks if ch.choices for tc in ch.choices[0].delta.tool_calls or []]
    assert parts[0].id == "call_1EYWDzueHEp8OsB8jJSEp7WB" and parts[0].function.name == "multiply"
    assert json.loads("".join(p.function.arguments or "" for p in parts)) == {"a": 1231, "b": 2331}
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason] == [
        "tool_calls"
    ]


async def test_anthropic_tool_use_stream_through_the_anthropic_sdk() -> None:
    name = "anthropic-stream__anthropic__llm-anthropic__stream-tool-use.json"
    async with replaying("anthropic", name, kind="anthropic") as url:
        async with anthropic.AsyncAnthropic(base_url=url, api_key=token("user", "acme"), max_retries=0) as c:
            async with c.messages.stream(
                model="m",
                max_tokens=100,
                messages=[{"role": "user", "content": "name a pelican"}],
                tools=[
                    {"name": "pelican_name_generator", "input_schema": {"type": "object", "properties": {}}}
                ],
            ) as stream:
                final = await stream.get_final_message()
    block = final.content[0]
    assert block.type == "tool_use" and block.name == "pelican_name_generator"
    assert block.id == "toolu_01CzN6riCPqw4pVSuTd9Dwn7"
    assert final.stop_reason == "tool_use"
    assert final.usage.input_tokens == 543 and final.usage.output_tokens == 40


async def test_count_tokens_is_answered_by_an_anthropic_provider() -> None:
    async with replaying(
        "anthropic", "anthropic-other__anthropic__pydantic-ai__count-tokens.json", "anthropic"
    ) as url:
        async with anthropic.AsyncAnthropic(base_url=url, api_key=token("user", "acme"), max_retries=0) as c:
            count = await c.messages.count_tokens(model="m", messages=[{"role": "user", "content": "x"}])
    assert count.input_tokens == 1114
