"""Test helpers shipped for users' own tests (and podium's).

- ``FakeUpstream``: a real local HTTP server with scripted routes, fault injection and a request log.
- ``SimulatedOpenAI`` / ``SimulatedAnthropic``: fake upstreams speaking each API's wire format, with
  deterministic answers, streaming, embeddings and model lists (what ``podium demo`` runs against).
- ``ReplayServer``: serves one recorded HTTP interaction for any request.
- ``MockProvider``: an in-process provider with scripted answers and failures, no HTTP at all.
- ``http_scope``: the ASGI scope of one request, to call an app directly without a server.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

import msgspec
from aiohttp import web

from podium.backend import CallContext
from podium.errors import ProviderError
from podium.providers.base import Provider, ProviderConfig
from podium.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    EmbedRequest,
    EmbedResponse,
    Usage,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def http_scope(method: str, path: str, headers: Sequence[tuple[bytes, bytes]]) -> dict[str, Any]:
    """The ASGI scope of one HTTP/1.1 request from loopback, as a server would pass it to the app.

    Calling ``app(scope, receive, send)`` with it runs the request in the caller's task, without a
    server or a client in between (what in-process drivers and task-local state tests need).

    Args:
        method: The HTTP method.
        path: The path, without a query string.
        headers: Raw ``(name, value)`` pairs, names in lower case.
    """
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": list(headers),
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2),
        "state": {},
    }


@dataclass(slots=True)
class RecordedRequest:
    """A request an upstream received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass(slots=True)
class Fault:
    """A scripted failure: an HTTP status (with body and headers), a delay, or a dropped connection."""

    status: int = 503
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False
    remaining: int | None = None  # None: until cleared


class FakeUpstream:
    """A real HTTP server on 127.0.0.1 with scripted routes and injectable faults.

    Use as ``up = FakeUpstream(); up.route("POST", "/v1/x", handler); async with up: ...``; ``up.url`` is
    its base. Routes are fixed once it starts.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.requests: list[RecordedRequest] = []
        self.fault: Fault | None = None
        self._routes: list[tuple[str, str, Handler]] = []
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321``."""
        return f"http://{self.host}:{self.port}"

    def route(self, method: str, path: str, handler: Handler) -> None:
        """Serve ``handler`` for ``method path`` (aiohttp path syntax, e.g. ``/v1beta/{tail:.*}``)."""
        if self._runner is not None:
            raise RuntimeError("FakeUpstream.route() must be called before start() / 'async with'")
        self._routes.append((method, path, handler))

    def fail(
        self,
        status: int = 503,
        *,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
        drop: bool = False,
        times: int | None = None,
    ) -> None:
        """Make the next ``times`` requests (all, when None) fail this way until ``recover()``."""
        self.fault = Fault(status, body, dict(headers or {}), delay, drop, times)

    def recover(self) -> None:
        """Stop failing."""
        self.fault = None

    async def start(self) -> Self:
        """Start serving."""
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        for method, path, handler in self._routes:
            app.router.add_route(method, path, handler)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        if server is not None and self.port == 0:
            sockets = getattr(server, "sockets", None) or []
            self.port = sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = msgspec.json.decode(raw) if raw else None
        except msgspec.DecodeError:
            body = raw.decode("utf-8", "replace")
        self.requests.append(
            RecordedRequest(request.method, request.path, dict(request.query), dict(request.headers), body)
        )
        fault = self.fault
        if fault is not None:
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self.fault = None
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.drop:
                transport = request.transport
                if transport is not None:
                    transport.abort()
                raise asyncio.CancelledError
            if fault.status:
                payload = fault.body if fault.body is not None else {"error": {"message": "injected fault"}}
                return web.Response(
                    status=fault.status,
                    body=msgspec.json.encode(payload),
                    headers={"content-type": "application/json", **fault.headers},
                )
        return await handler(request)


async def _sse(
    request: web.Request, events: Sequence[tuple[str | None, Any]], delay: float
) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"content-type": "text/event-stream", "cache-control": "no-cache"})
    await resp.prepare(request)
    for name, data in events:
        payload = data if isinstance(data, str) else msgspec.json.encode(data).decode()
        head = f"event: {name}\n" if name else ""
        await resp.write(f"{head}data: {payload}\n\n".encode())
        if delay:
            await asyncio.sleep(delay)
    await resp.write_eof()
    return resp


def _words(text: str) -> list[str]:
    parts = text.split(" ")
    return [p if i == len(parts) - 1 else p + " " for i, p in enumerate(parts)]


def fake_embedding(text: str, dimensions: int = 16) -> list[float]:
    """A deterministic unit vector derived from the text's hash."""
    digest = hashlib.sha256(text.encode()).digest()
    raw = [(digest[i % len(digest)] - 127.5) / 127.5 for i in range(dimensions)]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return [x / norm for x in raw]


def _count_tokens(text: str) -> int:
    return max(1, len(text.split()))


class SimulatedOpenAI(FakeUpstream):
    """A fake OpenAI API: chat (JSON and SSE with usage), legacy completions, embeddings, models.

    Answers are deterministic: ``reply(prompt)`` (default: ``"[<name>] you said: <last user text>"``).
    """

    def __init__(
        self,
        name: str = "openai-sim",
        *,
        reply: Callable[[str], str] | None = None,
        chunk_delay: float = 0.0,
        models: Sequence[str] = ("gpt-4o-mini", "text-embedding-3-small"),
    ) -> None:
        super().__init__()
        self.name = name
        self.reply = reply or (lambda prompt: f"[{name}] you said: {prompt}")
        self.chunk_delay = chunk_delay
        self.models = list(models)
        self.route("POST", "/v1/chat/completions", self._chat)
        self.route("POST", "/v1/completions", self._completions)
        self.route("POST", "/v1/embeddings", self._embeddings)
        self.route("GET", "/v1/models", self._models)

    @property
    def base_url(self) -> str:
        """The URL to configure as the provider's ``base_url``."""
        return f"{self.url}/v1"

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = self.requests[-1].body
        messages = body.get("messages", [])
        last = next((m for m in reversed(messages) if m.get("role") == "user"), {"content": ""})
        content = last.get("content")
        prompt = (
            content
            if isinstance(content, str)
            else " ".join(p.get("text", "") for p in content or [] if isinstance(p, dict))
        )
        text = self.reply(prompt)
        if body.get("max_tokens"):
            text = "".join(_words(text)[: int(body["max_tokens"])])
        model = body.get("model", "gpt-4o-mini")
        rid = f"chatcmpl-{uuid.uuid4().hex[:20]}"
        created = int(time.time())
        usage = {
            "prompt_tokens": sum(_count_tokens(str(m.get("content", ""))) for m in messages),
            "completion_tokens": _count_tokens(text),
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        if not body.get("stream"):
            return web.json_response(
                {
                    "id": rid,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": "stop",
                            "logprobs": None,
                        }
                    ],
                    "usage": usage,
                }
            )
        base = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model}
        events: list[tuple[str | None, Any]] = [
            (
                None,
                {
                    **base,
                    "choices": [
                        {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
                    ],
                },
            )
        ]
        events += [
            (None, {**base, "choices": [{"index": 0, "delta": {"content": w}, "finish_reason": None}]})
            for w in _words(text)
        ]
        events.append((None, {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append((None, {**base, "choices": [], "usage": usage}))
        events.append((None, "[DONE]"))
        return await _sse(request, events, self.chunk_delay)

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        body = self.requests[-1].body
        text = self.reply(str(body.get("prompt", "")))
        return web.json_response(
            {
                "id": f"cmpl-{uuid.uuid4().hex[:20]}",
                "object": "text_completion",
                "created": int(time.time()),
                "model": body.get("model"),
                "choices": [{"index": 0, "text": text, "finish_reason": "stop"}],
                "usage": {
                    "prompt_tokens": _count_tokens(str(body.get("prompt", ""))),
                    "completion_tokens": _count_tokens(text),
                    "total_tokens": _count_tokens(str(body.get("prompt", ""))) + _count_tokens(text),
                },
            }
        )

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        body = self.requests[-1].body
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        dims = int(body.get("dimensions") or 16)
        tokens = sum(_count_tokens(t) for t in inputs)
        return web.json_response(
            {
                "object": "list",
                "model": body.get("model"),
                "data": [
                    {"object": "embedding", "index": i, "embedding": fake_embedding(t, dims)}
                    for i, t in enumerate(inputs)
                ],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def _models(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {
                "object": "list",
                "data": [
                    {"id": m, "object": "model", "created": 0, "owned_by": self.name} for m in self.models
                ],
            }
        )


class SimulatedAnthropic(FakeUpstream):
    """A fake Anthropic Messages API: JSON and the real SSE event sequence, and a model list."""

    def __init__(
        self,
        name: str = "anthropic-sim",
        *,
        reply: Callable[[str], str] | None = None,
        chunk_delay: float = 0.0,
        models: Sequence[str] = ("claude-3-5-haiku-latest",),
    ) -> None:
        super().__init__()
        self.name = name
        self.reply = reply or (lambda prompt: f"[{name}] you said: {prompt}")
        self.chunk_delay = chunk_delay
        self.models = list(models)
        self.route("POST", "/v1/messages", self._messages)
        self.route("GET", "/v1/models", self._models)

    @property
    def base_url(self) -> str:
        """The URL to configure as the provider's ``base_url``."""
        return self.url

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        body = self.requests[-1].body
        if not request.headers.get("anthropic-version"):
            return web.json_response(
                {
                    "type": "error",
                    "error": {
                        "type": "invalid_request_error",
                        "message": "anthropic-version: header is required",
                    },
                },
                status=400,
            )
        messages = body.get("messages", [])
        last = next((m for m in reversed(messages) if m.get("role") == "user"), {"content": ""})
        content = last.get("content")
        prompt = (
            content
            if isinstance(content, str)
            else " ".join(b.get("text", "") for b in content or [] if isinstance(b, dict))
        )
        text = self.reply(prompt)
        words = _words(text)[: int(body.get("max_tokens") or 1024)]
        text = "".join(words)
        model = body.get("model", "claude-3-5-haiku-latest")
        mid = f"msg_{uuid.uuid4().hex[:24]}"
        in_tokens = sum(_count_tokens(str(m.get("content", ""))) for m in messages)
        out_tokens = _count_tokens(text)
        if not body.get("stream"):
            return web.json_response(
                {
                    "id": mid,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [{"type": "text", "text": text}],
                    "stop_reason": "end_turn",
                    "stop_sequence": None,
                    "usage": {"input_tokens": in_tokens, "output_tokens": out_tokens},
                }
            )
        events: list[tuple[str | None, Any]] = [
            (
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": mid,
                        "type": "message",
                        "role": "assistant",
                        "model": model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": {"input_tokens": in_tokens, "output_tokens": 1},
                    },
                },
            ),
            (
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            ),
            ("ping", {"type": "ping"}),
        ]
        events += [
            (
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": w}},
            )
            for w in words
        ]
        events += [
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": out_tokens},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
        return await _sse(request, events, self.chunk_delay)

    async def _models(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {
                "data": [{"type": "model", "id": m, "display_name": m} for m in self.models],
                "has_more": False,
                "first_id": self.models[0],
                "last_id": self.models[-1],
            }
        )


class ReplayServer(FakeUpstream):
    """Serves one recorded HTTP response for every request, exactly as recorded.

    Args:
        status: Response status.
        headers: Response headers (content type included).
        body: The raw body bytes.
    """

    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        super().__init__()
        self.status = status
        self.headers = {
            k: v
            for k, v in headers.items()
            if k.lower() not in ("content-length", "transfer-encoding", "content-encoding")
        }
        self.body = body
        self.route("*", "/{tail:.*}", self._serve)

    @classmethod
    def from_recording(cls, recording: Mapping[str, Any]) -> ReplayServer:
        """Build from a recording dict with ``response.status``, ``headers``, ``body_text``/``body_json``."""
        response = recording["response"]
        if response.get("body_text") is not None:
            body = str(response["body_text"]).encode()
        else:
            body = msgspec.json.encode(response.get("body_json"))
        headers = dict(response.get("headers") or {})
        headers.setdefault("content-type", "application/json")
        return cls(int(response["status"]), headers, body)

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(status=self.status, headers=self.headers)
        await resp.prepare(request)
        # Written in a few pieces so stream decoders see events split across reads, as on a real network.
        step = max(1, len(self.body) // 7)
        for i in range(0, len(self.body), step):
            await resp.write(self.body[i : i + step])
        await resp.write_eof()
        return resp


class MockProvider(Provider):
    """An in-process provider with scripted behaviour, for testing the layers above adapters.

    Args:
        name: Provider name.
        reply: Text answered to every request (or a function of the last user text).
        tenant: Its tenant.
        priority: Routing priority (lower first).
        weight: Share among equal priorities.
        failures: Errors raised by the next calls, one per call, before answering normally.
        latency: Seconds each call takes.
    """

    kind = "mock"

    def __init__(
        self,
        name: str = "mock",
        reply: str | Callable[[str], str] = "mock answer",
        *,
        tenant: str = "default",
        priority: int = 100,
        weight: float = 1.0,
        failures: Sequence[ProviderError] = (),
        latency: float = 0.0,
        default_model: str = "mock-model",
    ) -> None:
        super().__init__(
            ProviderConfig(
                name=name,
                type="mock",
                tenant=tenant,
                priority=priority,
                weight=weight,
                default_model=default_model,
            )
        )
        self.reply = reply
        self.failures = list(failures)
        self.latency = latency
        self.calls: list[ChatRequest | EmbedRequest] = []

    def _answer(self, request: ChatRequest) -> str:
        last = next((m.text() for m in reversed(request.messages) if m.role == "user"), "")
        return self.reply(last) if callable(self.reply) else self.reply

    async def _before(self) -> None:
        if self.latency:
            await asyncio.sleep(self.latency)
        if self.failures:
            err = self.failures.pop(0)
            err.provider = err.provider or self.name
            raise err

    async def chat(self, request: ChatRequest, ctx: CallContext) -> ChatResponse:
        """Answer with the scripted reply (after any scripted failure)."""
        self.calls.append(request)
        t0 = time.perf_counter()
        await self._before()
        text = self._answer(request)
        prompt = sum(_count_tokens(m.text()) for m in request.messages)
        out = _count_tokens(text)
        return ChatResponse(
            id=f"mock-{uuid.uuid4().hex[:12]}",
            content=text,
            finish_reason="stop",
            usage=Usage(prompt, out, prompt + out),
            provider=self.name,
            model=self.resolve_model(request.model),
            latency_ms=(time.perf_counter() - t0) * 1000,
        )

    async def stream(self, request: ChatRequest, ctx: CallContext) -> AsyncIterator[list[ChatChunk]]:
        """Stream the scripted reply word by word (a batch per word, as if each came alone), then usage."""
        self.calls.append(request)
        await self._before()
        text = self._answer(request)
        model = self.resolve_model(request.model)
        for w in _words(text):
            yield [ChatChunk(delta=w, provider=self.name, model=model)]
        prompt = sum(_count_tokens(m.text()) for m in request.messages)
        out = _count_tokens(text)
        yield [
            ChatChunk(finish_reason="stop", provider=self.name, model=model),
            ChatChunk(usage=Usage(prompt, out, prompt + out), provider=self.name, model=model),
        ]

    async def embed(self, request: EmbedRequest, ctx: CallContext) -> EmbedResponse:
        """Deterministic hash embeddings."""
        self.calls.append(request)
        await self._before()
        tokens = sum(_count_tokens(t) for t in request.input)
        return EmbedResponse(
            embeddings=[fake_embedding(t, request.dimensions or 16) for t in request.input],
            model=request.model or "mock-embed",
            provider=self.name,
            usage=Usage(tokens, 0, tokens),
        )
