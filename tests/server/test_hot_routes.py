"""The generation endpoints' direct dispatch keeps the behaviour Starlette's stack gave them."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from podium.backend import CallContext
from podium.orchestrator import Orchestrator
from podium.server import create_app
from podium.testing import SimulatedOpenAI
from podium.types import ChatRequest, ChatResponse
from tests.server.live import authenticator, gateway_over, serve, token

AUTH = {"authorization": f"Bearer {token('user', 'acme')}"}
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
async def gateway() -> AsyncIterator[tuple[str, Orchestrator]]:
    async with SimulatedOpenAI("up") as up:
        orch = Orchestrator()
        await orch.create_provider(
            type="openai",
            name="gpt",
            base_url=up.base_url,
            api_key="sk-test",
            tenant="acme",
            models=["gpt-4o-mini"],
        )
        try:
            async with serve(create_app(orch, authenticator=authenticator())) as base:
                yield base, orch
        finally:
            await orch.aclose()


async def call(method: str, url: str, body: Any = None) -> tuple[int, dict[str, str], Any]:
    async with aiohttp.ClientSession() as s, s.request(method, url, json=body, headers=AUTH) as r:
        data = await r.json(content_type=None) if r.content_type == "application/json" else await r.read()
        return r.status, {k.lower(): v for k, v in r.headers.items()}, data


async def test_chat_is_served_with_request_id_and_overhead(gateway: tuple[str, Orchestrator]) -> None:
    base, _ = gateway
    status, headers, body = await call("POST", f"{base}/v1/chat/completions", CHAT)
    assert status == 200, body
    assert body["object"] == "chat.completion" and body["choices"][0]["message"]["content"]
    assert headers["x-podium-provider"] == "gpt"
    assert headers["x-request-id"] and float(headers["x-podium-overhead-ms"]) >= 0


async def test_a_bug_is_a_500_in_each_api_shape_and_logged(
    gateway: tuple[str, Orchestrator], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    base, orch = gateway

    async def broken(request: ChatRequest, ctx: CallContext) -> ChatResponse:
        raise RuntimeError("a bug")

    monkeypatch.setattr(orch, "chat_request", broken)
    with caplog.at_level(logging.ERROR, logger="podium.server"):
        status, headers, body = await call("POST", f"{base}/v1/chat/completions", CHAT)
        assert status == 500 and body["error"]["code"] == "internal_error"
        assert "a bug" not in body["error"]["message"] and headers["x-request-id"]
        anthropic = {
            "model": "gpt-4o-mini",
            "max_tokens": 10,
            "messages": [{"role": "user", "content": "hi"}],
        }
        status, _, body = await call("POST", f"{base}/v1/messages", anthropic)
        assert status == 500 and body["type"] == "error" and body["error"]["type"] == "api_error"
    assert any("a bug" in (r.exc_text or "") for r in caplog.records)


async def test_podium_errors_keep_their_status(gateway: tuple[str, Orchestrator]) -> None:
    base, _ = gateway
    status, _, body = await call("POST", f"{base}/v1/chat/completions", {"model": "nope", "messages": []})
    assert status in (400, 404) and body["error"]["message"]
    async with aiohttp.ClientSession() as s, s.post(f"{base}/v1/chat/completions", json=CHAT) as r:
        assert r.status == 401 and (await r.json())["error"]["type"] == "authentication_error"


async def test_other_methods_and_paths_still_go_through_the_router(gateway: tuple[str, Orchestrator]) -> None:
    base, _ = gateway
    status, _, body = await call("GET", f"{base}/v1/chat/completions")
    assert status == 405 and "no endpoint GET /v1/chat/completions" in body["error"]["message"]
    status, _, body = await call("POST", f"{base}/v1/chat/completion", CHAT)
    assert status == 404 and body["error"]["code"] == "not_found"
    status, _, body = await call("GET", f"{base}/v1/models")
    assert status == 200 and [m["id"] for m in body["data"]] == ["gpt-4o-mini"]


@pytest.mark.parametrize(
    ("status", "headers", "media_type"),
    [
        (200, {"x-podium-provider": "gpt", "x-ratelimit-limit-requests": "60"}, None),
        (200, None, None),
        (429, {"Retry-After": "2", "X-RateLimit-Reset-Requests": "1.500s"}, None),
        (204, {"x-podium-provider": "gpt"}, None),
        (200, {"content-type": "application/vnd.custom+json", "Content-Length": "2"}, None),
        (200, {"x-a": "é"}, "text/plain"),
    ],
)
def test_json_answers_carry_the_headers_starlette_would_write(
    status: int, headers: dict[str, str] | None, media_type: str | None
) -> None:
    from starlette.responses import Response

    from podium.server.http import JSONBytes

    ours = JSONBytes(b"{}", status_code=status, headers=headers, media_type=media_type)
    theirs = Response(b"{}", status_code=status, headers=headers, media_type=media_type or "application/json")
    assert ours.raw_headers == theirs.raw_headers


def test_request_headers_read_by_lower_case_name_first_value_winning() -> None:
    from starlette.requests import Request

    from podium.server.deps import headers

    scope = {
        "type": "http",
        "headers": [
            (b"authorization", b"Bearer one"),
            (b"x-podium-tenant", b"acme"),
            (b"authorization", b"x"),
        ],
    }
    request = Request(scope)
    assert headers(request) == {"authorization": "Bearer one", "x-podium-tenant": "acme"}
    assert headers(request) is headers(request)  # built once per request
    assert headers(Request({"type": "http", "headers": []})) == {}


async def test_the_tenant_header_is_read_whatever_its_case(gateway: tuple[str, Orchestrator]) -> None:
    base, _ = gateway
    async with aiohttp.ClientSession() as s:
        # An ordinary user naming another tenant is told it does not exist (404), by the header alone.
        headers = {**AUTH, "X-Podium-Tenant": "other"}
        async with s.post(f"{base}/v1/chat/completions", json=CHAT, headers=headers) as r:
            assert r.status == 404, await r.text()
        headers = {**AUTH, "X-Podium-Tenant": "acme"}
        async with s.post(f"{base}/v1/chat/completions", json=CHAT, headers=headers) as r:
            assert r.status == 200, await r.text()


async def test_a_legacy_completion_passes_its_extra_parameters_to_the_provider() -> None:
    received: list[Any] = []

    async def legacy(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.json_response(
            {
                "id": "cmpl-1",
                "model": "davinci-002",
                "choices": [{"index": 0, "text": " world", "finish_reason": "length"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        )

    async with gateway_over(legacy, path="/v1/completions") as (_, base):
        body = {"model": "davinci-002", "prompt": "Hello", "max_tokens": 1, "echo": True,
                "best_of": 2, "suffix": None, "future_option": "x"}  # fmt: skip
        status, _, answer = await call("POST", f"{base}/v1/completions", body)
    assert status == 200, answer
    assert answer["choices"][0]["text"] == " world"
    assert received == [
        {
            "model": "davinci-002",
            "prompt": "Hello",
            "max_tokens": 1,
            "echo": True,
            "best_of": 2,
            "future_option": "x",
        }
    ]
