"""The official openai SDK against a real podium server in front of real local upstreams."""

from __future__ import annotations

import base64
import struct
from collections.abc import AsyncIterator

import aiohttp
import openai
import pytest

from podium.testing import fake_embedding
from tests.e2e.conftest import Gateway


def client(gw: Gateway, key: str | None = None) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{gw.url}/v1", api_key=key or gw.key(), max_retries=0)


async def test_chat_answers_with_the_upstream_reply_and_usage(gateway: Gateway) -> None:
    async with client(gateway) as c:
        raw = await c.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hello there"}]
        )
    resp = raw.parse()
    assert resp.choices[0].message.content == "[oai] you said: hello there"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage is not None and resp.usage.total_tokens == resp.usage.prompt_tokens + 5
    assert raw.headers["x-podium-provider"] == "oai"
    assert len(raw.headers["x-request-id"]) >= 16
    assert float(raw.headers["x-podium-overhead-ms"]) >= 0


async def test_alias_and_provider_prefix_reach_the_named_provider(gateway: Gateway) -> None:
    async with client(gateway) as c:
        fast = await c.chat.completions.create(model="fast", messages=[{"role": "user", "content": "a"}])
        smart = await c.chat.completions.create(model="smart", messages=[{"role": "user", "content": "b"}])
        pinned = await c.chat.completions.create(
            model="ant/claude-haiku-4-5", messages=[{"role": "user", "content": "c"}]
        )
    assert fast.choices[0].message.content == "[oai] you said: a"
    assert smart.choices[0].message.content == "[ant] you said: b"
    assert pinned.choices[0].message.content == "[ant] you said: c"
    assert gateway.anthropic_up.requests[-1].body["model"] == "claude-haiku-4-5"


async def test_stream_reassembles_to_the_upstream_text_and_ends_with_usage(gateway: Gateway) -> None:
    async with client(gateway) as c:
        stream = await c.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "stream me some words"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == "[oai] you said: stream me some words"
    finishes = [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 7


async def test_stream_from_an_anthropic_upstream_speaks_openai(gateway: Gateway) -> None:
    async with client(gateway) as c:
        stream = await c.chat.completions.create(
            model="claude-haiku-4-5", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        chunks = [chunk async for chunk in stream]
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == "[ant] you said: hi"
    assert all(ch.usage is None for ch in chunks)  # not asked for


async def test_sse_framing_is_exact(gateway: Gateway) -> None:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}], "stream": True}
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            f"{gateway.url}/v1/chat/completions",
            json=body,
            headers={"authorization": f"Bearer {gateway.key()}"},
        ) as r,
    ):
        raw = await r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
    events = raw.split(b"\n\n")
    assert events[-1] == b"" and events[-2] == b"data: [DONE]"
    assert all(e.startswith(b"data: {") for e in events[:-2])


async def test_extra_body_parameters_reach_the_upstream(gateway: Gateway) -> None:
    async with client(gateway) as c:
        await c.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "x"}],
            frequency_penalty=0.5,
            extra_body={"top_k": 3},
        )
    sent = gateway.openai_up.requests[-1].body
    assert sent["frequency_penalty"] == 0.5 and sent["top_k"] == 3


async def test_embeddings_float_and_base64(gateway: Gateway) -> None:
    async with client(gateway) as c:
        default = await c.embeddings.create(model="text-embedding-3-small", input=["one", "two"])
        floats = await c.embeddings.create(
            model="text-embedding-3-small", input="three", encoding_format="float"
        )
    assert [d.index for d in default.data] == [0, 1]
    assert default.data[1].embedding == pytest.approx(fake_embedding("two"), abs=1e-6)
    assert floats.data[0].embedding == pytest.approx(fake_embedding("three"))
    assert default.usage.prompt_tokens == 2


async def test_embeddings_base64_is_little_endian_float32(gateway: Gateway) -> None:
    body = {"model": "text-embedding-3-small", "input": "four", "encoding_format": "base64"}
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            f"{gateway.url}/v1/embeddings", json=body, headers={"authorization": f"Bearer {gateway.key()}"}
        ) as r,
    ):
        data = await r.json()
    packed = base64.b64decode(data["data"][0]["embedding"])
    assert list(struct.unpack(f"<{len(packed) // 4}f", packed)) == pytest.approx(
        fake_embedding("four"), abs=1e-6
    )


async def test_legacy_completions(gateway: Gateway) -> None:
    async with client(gateway) as c:
        resp = await c.completions.create(model="gpt-4o-mini", prompt="complete this")
    assert resp.choices[0].text == "[oai] you said: complete this"


async def test_models_list_has_the_tenants_models_and_aliases(gateway: Gateway) -> None:
    async with client(gateway) as c:
        models = [m.id async for m in c.models.list()]
        one = await c.models.retrieve("fast")
    assert set(models) == {"gpt-4o-mini", "text-embedding-3-small", "claude-haiku-4-5", "fast", "smart"}
    assert one.owned_by == "oai"


async def test_other_tenant_sees_none_of_acmes_models(gateway: Gateway) -> None:
    async with client(gateway, gateway.key("user", "globex")) as c:
        assert [m.id async for m in c.models.list()] == []
        with pytest.raises(openai.APIStatusError) as info:
            await c.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 503  # globex has no providers at all


async def test_upstream_429_reaches_the_sdk_as_rate_limit_with_retry_after(gateway: Gateway) -> None:
    gateway.openai_up.fail(
        429,
        body={"error": {"message": "slow down", "type": "rate_limit_error", "code": "rate_limit_exceeded"}},
        headers={"retry-after": "7"},
    )
    async with client(gateway) as c:
        with pytest.raises(openai.RateLimitError) as info:
            await c.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
        with pytest.raises(openai.RateLimitError) as streamed:
            await c.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}], stream=True
            )
    assert info.value.response.headers["retry-after"] == "7"
    assert streamed.value.response.headers["retry-after"] == "7"
    assert "slow down" in info.value.message


async def test_unknown_model_is_404(gateway: Gateway) -> None:
    async with client(gateway) as c:
        with pytest.raises(openai.NotFoundError) as info:
            await c.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "x"}])
    assert info.value.code == "model_not_found"
    assert "gpt-9" in info.value.message


async def test_bad_credentials_are_401(gateway: Gateway) -> None:
    async with client(gateway, "not-a-key") as c:
        with pytest.raises(openai.AuthenticationError):
            await c.models.list()


async def test_oversized_body_is_413(gateway: Gateway) -> None:
    async with client(gateway) as c:
        with pytest.raises(openai.APIStatusError) as info:
            await c.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "x" * 100_000}]
            )
    assert info.value.status_code == 413
    assert "limit" in info.value.message


async def test_a_chunked_body_is_read_whole_and_refused_past_the_limit(gateway: Gateway) -> None:
    # No content-length: the size is only known while reading (the limit is 64 KiB here).
    def pieces(text: str) -> list[bytes]:
        body = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"%s"}]}' % text.encode()
        return [body[i : i + 1000] for i in range(0, len(body), 1000)]

    async def chunked(parts: list[bytes]) -> tuple[int, dict[str, object], str | None]:
        async def data() -> AsyncIterator[bytes]:
            for part in parts:
                yield part

        headers = {"authorization": f"Bearer {gateway.key()}", "content-type": "application/json"}
        async with (
            aiohttp.ClientSession() as s,
            s.post(f"{gateway.url}/v1/chat/completions", data=data(), headers=headers) as r,
        ):
            return r.status, await r.json(), r.request_info.headers.get("transfer-encoding")

    status, body, framing = await chunked(pieces("y" * 5000))
    assert (status, framing) == (200, "chunked")
    assert body["choices"][0]["message"]["content"] == "[oai] you said: " + "y" * 5000  # type: ignore[index]
    status, body, framing = await chunked(pieces("y" * 100_000))
    assert (status, framing) == (413, "chunked")
    assert "limit" in body["error"]["message"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "empty"),
        (b'{"model": "gpt-4o-mini", "messages": "hi"}', "messages"),
        (
            b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}], "temperature": 7}',
            "temperature",
        ),
        (b'{"model": "gpt-4o-mini", "messages": [{"role": "wizard", "content": "x"}]}', "role"),
        (b'{"model": "gpt-4o-mini", "messages": []}', "messages"),
    ],
)
async def test_bad_requests_are_400_with_a_clear_message(
    gateway: Gateway, payload: bytes, needle: str
) -> None:
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            f"{gateway.url}/v1/chat/completions",
            data=payload,
            headers={"authorization": f"Bearer {gateway.key()}", "content-type": "application/json"},
        ) as r,
    ):
        body = await r.json()
        assert r.status == 400
        assert r.headers["x-request-id"]
    assert needle in body["error"]["message"]
    assert body["error"]["type"] == "invalid_request_error"


async def test_unknown_path_is_404_in_openai_shape(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as s, s.get(f"{gateway.url}/v1/nothing") as r:
        assert r.status == 404
        assert "no endpoint" in (await r.json())["error"]["message"]
