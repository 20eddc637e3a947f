"""Test helpers: a real uvicorn server on a loopback port, and a fixed-token authenticator."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from aiohttp import web
from starlette.types import ASGIApp

from podium.auth.principal import Principal, Role
from podium.errors import AuthError
from podium.orchestrator import Orchestrator
from podium.server import create_app
from podium.server.protocol import OneWriteHttpToolsProtocol
from podium.testing import FakeUpstream

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class TokenAuthenticator:
    """Maps fixed tokens (``Authorization: Bearer`` or ``x-api-key``) to principals."""

    def __init__(self, tokens: Mapping[str, Principal]) -> None:
        self.tokens = dict(tokens)

    async def authenticate(self, headers: Mapping[str, str]) -> Principal:
        auth = headers.get("authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else headers.get("x-api-key")
        if not token:
            raise AuthError("missing API key: send Authorization: Bearer <key> or x-api-key")
        principal = self.tokens.get(token)
        if principal is None:
            raise AuthError("invalid API key")
        return principal


def principal(role: Role, tenant: str) -> Principal:
    return Principal(subject=f"{role}@{tenant}", tenant=tenant, role=role, method="api_key", key_id=None)


def token(role: Role, tenant: str) -> str:
    return f"tok-{role}-{tenant}"


def authenticator(tenants: tuple[str, ...] = ("acme", "globex")) -> TokenAuthenticator:
    roles: tuple[Role, ...] = ("admin", "tenant_admin", "user", "viewer")
    return TokenAuthenticator({token(r, t): principal(r, t) for r in roles for t in tenants})


@asynccontextmanager
async def serve(app: ASGIApp, **config: object) -> AsyncIterator[str]:
    """Run ``app`` under uvicorn on a free loopback port in this event loop; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # The HTTP protocol podium serve runs (uvicorn's httptools one, one write per answer).
    options: dict[str, Any] = {"log_level": "warning", "lifespan": "on", "http": OneWriteHttpToolsProtocol}
    server = uvicorn.Server(uvicorn.Config(app, **{**options, **config}))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.005)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@asynccontextmanager
async def gateway_over(
    chat: Handler, provider: str = "up", path: str = "/v1/chat/completions"
) -> AsyncIterator[tuple[Orchestrator, str]]:
    """A served gateway whose one provider (openai, tenant ``acme``) is a fake upstream.

    The upstream answers ``POST path`` with ``chat``. Yields the orchestrator (to configure further)
    and the gateway's base URL; callers authenticate with :func:`token`.
    """
    up = FakeUpstream()
    up.route("POST", path, chat)
    async with up:
        orch = Orchestrator()
        await orch.create_provider(
            type="openai", name=provider, tenant="acme", base_url=f"{up.url}/v1", default_model="m"
        )
        try:
            async with serve(create_app(orch, authenticator=authenticator())) as url:
                yield orch, url
        finally:
            await orch.aclose()
