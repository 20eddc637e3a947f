"""A real local OpenAI-compatible upstream that can be told to misbehave in each way a provider does."""

from __future__ import annotations

import asyncio
from typing import Literal

from aiohttp import web

from podium.providers.base import ProviderConfig
from podium.providers.openai import OpenAIProvider
from podium.testing import SimulatedOpenAI

_FIRST_CHUNK = (
    '{"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "gpt-4o-mini", '
    '"choices": [{"index": 0, "delta": {"role": "assistant", "content": "partial "}, "finish_reason": null}]}'
)


async def _sleep_while_connected(request: web.Request, seconds: float) -> None:
    """Sleep, but stop as soon as the client hangs up (so the server can shut down promptly)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        transport = request.transport
        if transport is None or transport.is_closing():
            raise asyncio.CancelledError
        await asyncio.sleep(0.02)


Mode = Literal[
    "ok",
    "500",
    "502",
    "503",
    "529",
    "429",
    "slow",
    "slow_stream",
    "reset_mid_stream",
    "truncated_json",
    "invalid_sse",
]


class FaultyOpenAI(SimulatedOpenAI):
    """``SimulatedOpenAI`` whose chat endpoint fails the way ``mode`` says (``"ok"``: answers).

    Attributes:
        mode: The current fault.
        retry_after: Seconds sent in Retry-After with mode ``"429"``.
        slow_seconds: How long mode ``"slow"`` waits before answering.
        chat_calls: Chat requests received (every mode).
    """

    def __init__(self, name: str = "faulty") -> None:
        super().__init__(name)
        self.mode: Mode = "ok"
        self.retry_after = 7
        self.slow_seconds = 30.0
        self.chat_calls = 0

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self.chat_calls += 1
        body = self.requests[-1].body
        stream = bool(body.get("stream"))
        mode = self.mode
        if mode in ("500", "502", "503"):
            return web.json_response(
                {"error": {"message": f"injected {mode}", "type": "server_error"}}, status=int(mode)
            )
        if mode == "529":
            return web.json_response(
                {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, status=529
            )
        if mode == "429":
            return web.json_response(
                {"error": {"message": "Rate limit reached", "code": "rate_limit_exceeded"}},
                status=429,
                headers={"retry-after": str(self.retry_after)},
            )
        if mode == "slow":
            await _sleep_while_connected(request, self.slow_seconds)
        if mode == "slow_stream" and stream:
            resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
            await resp.prepare(request)
            await resp.write(f"data: {_FIRST_CHUNK}\n\n".encode())
            await _sleep_while_connected(request, self.slow_seconds)
            return resp
        if mode == "truncated_json":
            whole = b'{"id": "chatcmpl-1", "object": "chat.completion", "choices": [{"index": 0, "message": '
            return web.Response(body=whole, content_type="application/json")
        if mode == "invalid_sse" and stream:
            resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
            await resp.prepare(request)
            await resp.write(b"data: {this is not json\n\n")
            await resp.write_eof()
            return resp
        if mode == "reset_mid_stream" and stream:
            resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
            await resp.prepare(request)
            await resp.write(f"data: {_FIRST_CHUNK}\n\n".encode())
            await asyncio.sleep(0.05)  # let the client read the first event before the connection dies
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError
        return await super()._chat(request)


def openai_provider(name: str, base_url: str, *, priority: int, timeout: float = 30.0) -> OpenAIProvider:
    """A real OpenAI adapter for ``base_url`` (through the real HTTP client stack)."""
    return OpenAIProvider(
        ProviderConfig(
            name=name,
            type="openai",
            tenant="t1",
            base_url=base_url,
            api_key="sk-test-not-a-real-key-000000",
            default_model="gpt-4o-mini",
            priority=priority,
            timeout=timeout,
        )
    )
