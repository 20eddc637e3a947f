"""The seed's /api/ai REST API over a real server and a simulated upstream."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from podium.errors import ConfigError
from podium.orchestrator import Orchestrator
from podium.server import create_app
from podium.testing import SimulatedOpenAI
from tests.server.live import authenticator, serve, token

ADMIN = {"authorization": f"Bearer {token('tenant_admin', 'acme')}"}


@pytest.fixture
async def api() -> AsyncIterator[tuple[str, SimulatedOpenAI]]:
    async with SimulatedOpenAI("up") as up:
        orch = Orchestrator()
        try:
            async with serve(create_app(orch, authenticator=authenticator())) as base:
                yield f"{base}/api/ai", up
        finally:
            await orch.aclose()


async def req(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.request(method, url, json=body, headers=headers or ADMIN) as r:
        raw = await r.read()
        return r.status, (
            await r.json(content_type=None)
        ) if raw and r.content_type == "application/json" else raw


async def test_provider_lifecycle(api: tuple[str, SimulatedOpenAI]) -> None:
    url, up = api
    new = {
        "type": "openai",
        "name": "gpt",
        "baseUrl": up.base_url,
        "apiKey": "sk-abcdefghijklmnop1234",
        "defaultModel": "gpt-4o-mini",
    }
    status, created = await req("POST", f"{url}/providers", new)
    assert status == 201
    assert created["tenant"] == "acme" and created["api_key"] == "sk-...1234"
    assert (await req("POST", f"{url}/providers", new))[0] == 409
    status, listed = await req("GET", f"{url}/providers")
    assert [p["name"] for p in listed["providers"]] == ["gpt"]
    assert "abcdefghijklmnop" not in str(listed)
    status, updated = await req("PUT", f"{url}/providers/gpt", {"priority": 3})
    assert status == 200 and updated["priority"] == 3 and updated["default_model"] == "gpt-4o-mini"
    status, check = await req("POST", f"{url}/providers/gpt/test")
    assert status == 200 and check["success"] is True and "gpt-4o-mini" in check["models"]
    assert (await req("DELETE", f"{url}/providers/gpt"))[0] == 204
    assert (await req("GET", f"{url}/providers/gpt"))[0] == 404


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"name": "x"}, "type is required"),
        ({"type": "openai"}, "name is required"),
        ({"type": "warp", "name": "x"}, "unknown provider type"),
        ({"type": "openai", "name": "x", "priority": "high"}, "priority"),
        ({"type": "openai", "name": "x", "bogus": 1}, "bogus"),
    ],
)
async def test_invalid_providers_are_400(
    api: tuple[str, SimulatedOpenAI], body: dict[str, Any], needle: str
) -> None:
    status, answer = await req("POST", f"{api[0]}/providers", body)
    assert status == 400
    assert needle in answer["error"]["message"]


async def test_generation_and_statistics(api: tuple[str, SimulatedOpenAI]) -> None:
    url, up = api
    await req(
        "POST",
        f"{url}/providers",
        {"type": "openai", "name": "gpt", "base_url": up.base_url, "default_model": "gpt-4o-mini"},
    )
    status, chat = await req(
        "POST",
        f"{url}/chat/completions",
        {"messages": [{"role": "user", "content": "hi"}], "options": {"maxTokens": 50}},
    )
    assert status == 200
    assert chat["content"] == "[up] you said: hi" and chat["provider"] == "gpt"
    assert chat["usage"]["completion_tokens"] == 4
    assert up.requests[-1].body["max_tokens"] == 50
    status, text = await req("POST", f"{url}/completions", {"prompt": "go", "maxTokens": 9})
    assert status == 200 and text["text"] == "[up] you said: go"
    status, emb = await req("POST", f"{url}/embeddings", {"input": ["a", "b"], "dimensions": 8})
    assert status == 200 and [len(v) for v in emb["embeddings"]] == [8, 8]
    status, stats = await req("GET", f"{url}/statistics")
    assert status == 200 and stats["total_requests"] == 3 and stats["total_errors"] == 0


async def test_generation_stream_sends_canonical_chunks(api: tuple[str, SimulatedOpenAI]) -> None:
    url, up = api
    await req(
        "POST",
        f"{url}/providers",
        {"type": "openai", "name": "gpt", "base_url": up.base_url, "default_model": "gpt-4o-mini"},
    )
    status, raw = await req("POST", f"{url}/chat/completions", {"messages": "one two", "stream": True})
    assert status == 200
    events = raw.split(b"\n\n")
    assert events[-2] == b"data: [DONE]"
    assert b'"usage"' in events[-3]


@pytest.mark.parametrize(
    "body", [{"messages": "hi", "temperature": "hot"}, {"messages": 5}, {"messages": "hi", "timeout": -1}]
)
async def test_wrong_types_are_400_not_500(api: tuple[str, SimulatedOpenAI], body: dict[str, Any]) -> None:
    status, answer = await req("POST", f"{api[0]}/chat/completions", body)
    assert status == 400, answer
    assert answer["error"]["type"] == "invalid_request_error"


async def test_openapi_documents_every_route(api: tuple[str, SimulatedOpenAI]) -> None:
    base = api[0].removesuffix("/api/ai")
    status, doc = await req("GET", f"{base}/openapi.json")
    assert status == 200
    assert set(doc["paths"]) >= {
        "/v1/chat/completions",
        "/v1/messages",
        "/api/ai/providers/{name}/test",
        "/api/ai/statistics",
    }
    op = doc["paths"]["/v1/chat/completions"]["post"]
    assert {"400", "401", "403", "404", "413", "429", "502", "503"} <= set(op["responses"])
    schema_ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert "messages" in doc["components"]["schemas"][schema_ref.rsplit("/", 1)[1]]["properties"]
    status, html = await req("GET", f"{base}/docs")
    assert status == 200 and b"/openapi.json" in html


async def test_auth_disabled_serves_everyone_as_default_admin(caplog: pytest.LogCaptureFixture) -> None:
    orch = Orchestrator()
    with caplog.at_level(logging.WARNING, logger="podium.server"):
        app = create_app(orch, auth_enabled=False)
    assert "DISABLED" in caplog.text
    async with serve(app) as base:
        status, body = await req("GET", f"{base}/api/ai/providers", headers={})
    assert status == 200 and body == {"providers": []}


def test_auth_cannot_be_forgotten() -> None:
    with pytest.raises(ConfigError, match="authenticator"):
        create_app(Orchestrator())
