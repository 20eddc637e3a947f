"""The official anthropic SDK against podium: any provider answers in Anthropic's shapes."""

from __future__ import annotations

import aiohttp
import anthropic
import pytest

from tests.e2e.conftest import Gateway


def client(gw: Gateway, key: str | None = None) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=gw.url, api_key=key or gw.key(), max_retries=0)


@pytest.mark.parametrize(("model", "provider"), [("claude-haiku-4-5", "ant"), ("gpt-4o-mini", "oai")])
async def test_messages_from_either_provider(gateway: Gateway, model: str, provider: str) -> None:
    async with client(gateway) as c:
        msg = await c.messages.create(
            model=model,
            max_tokens=100,
            system="be brief",
            messages=[{"role": "user", "content": "hello claude"}],
        )
    assert msg.content[0].type == "text"
    assert msg.content[0].text == f"[{provider}] you said: hello claude"
    assert msg.stop_reason == "end_turn"
    assert msg.usage.output_tokens == 5


async def test_system_prompt_and_tool_results_reach_an_openai_upstream(gateway: Gateway) -> None:
    async with client(gateway) as c:
        await c.messages.create(
            model="gpt-4o-mini",
            max_tokens=50,
            system="you are terse",
            tools=[
                {"name": "add", "description": "add", "input_schema": {"type": "object", "properties": {}}}
            ],
            messages=[
                {"role": "user", "content": "add 1 and 2"},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t1", "name": "add", "input": {"a": 1}}],
                },
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "3"}]},
            ],
        )
    sent = gateway.openai_up.requests[-1].body
    assert sent["messages"][0] == {"role": "system", "content": "you are terse"}
    assert sent["messages"][2]["tool_calls"][0]["function"] == {"name": "add", "arguments": '{"a":1}'}
    assert sent["messages"][3] == {"role": "tool", "content": "3", "tool_call_id": "t1"}
    assert sent["tools"][0]["function"]["name"] == "add"


@pytest.mark.parametrize("model", ["claude-haiku-4-5", "gpt-4o-mini"])
async def test_stream_text_equals_the_upstream_reply(gateway: Gateway, model: str) -> None:
    async with client(gateway) as c:
        async with c.messages.stream(
            model=model, max_tokens=100, messages=[{"role": "user", "content": "stream please"}]
        ) as stream:
            text = await stream.get_final_text()
            final = await stream.get_final_message()
    assert text.endswith("you said: stream please")
    assert final.usage.output_tokens == 5
    assert final.usage.input_tokens > 0
    assert final.stop_reason == "end_turn"


async def test_stream_event_sequence_is_anthropics(gateway: Gateway) -> None:
    body = {
        "model": "gpt-4o-mini",
        "max_tokens": 20,
        "stream": True,
        "messages": [{"role": "user", "content": "a b"}],
    }
    async with (
        aiohttp.ClientSession() as s,
        s.post(f"{gateway.url}/v1/messages", json=body, headers={"x-api-key": gateway.key()}) as r,
    ):
        raw = (await r.read()).decode()
    names = [line[7:] for line in raw.split("\n") if line.startswith("event: ")]
    deltas = names.count("content_block_delta")
    assert deltas >= 2
    assert names == [
        "message_start", "content_block_start", "ping", *["content_block_delta"] * deltas,
        "content_block_stop", "message_delta", "message_stop",
    ]  # fmt: skip


async def test_unknown_model_is_anthropic_not_found(gateway: Gateway) -> None:
    async with client(gateway) as c:
        with pytest.raises(anthropic.NotFoundError) as info:
            await c.messages.create(
                model="claude-9", max_tokens=5, messages=[{"role": "user", "content": "x"}]
            )
    assert info.value.body == {
        "type": "error",
        "error": {"type": "not_found_error", "message": info.value.body["error"]["message"]},
    }
    assert "claude-9" in info.value.body["error"]["message"]


async def test_missing_max_tokens_is_400(gateway: Gateway) -> None:
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            f"{gateway.url}/v1/messages",
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]},
            headers={"x-api-key": gateway.key()},
        ) as r,
    ):
        body = await r.json()
        assert r.status == 400
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in body["error"]["message"]


async def test_server_tools_are_refused_clearly(gateway: Gateway) -> None:
    async with client(gateway) as c:
        with pytest.raises(anthropic.BadRequestError) as info:
            await c.messages.create(
                model="gpt-4o-mini",
                max_tokens=5,
                tools=[{"type": "web_search_20250305", "name": "web_search"}],
                messages=[{"role": "user", "content": "x"}],
            )
    assert "server tool" in info.value.message


async def test_wrong_key_is_authentication_error(gateway: Gateway) -> None:
    async with client(gateway, "nope") as c:
        with pytest.raises(anthropic.AuthenticationError):
            await c.messages.create(
                model="gpt-4o-mini", max_tokens=5, messages=[{"role": "user", "content": "x"}]
            )


async def test_count_tokens_without_a_counting_provider_is_a_clear_400(gateway: Gateway) -> None:
    async with client(gateway) as c:
        with pytest.raises(anthropic.BadRequestError) as info:
            await c.messages.count_tokens(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    assert "count tokens" in info.value.message
