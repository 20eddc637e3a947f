"""``create_app``: the gateway as an ASGI application.

The app is Starlette with podium's own thin layers: ``RequestTiming`` outermost (request id and
overhead headers on every answer), one error mapping for the whole podium error tree, and routes that
work on raw requests. Serve it with any ASGI server; ``podium serve`` uses uvicorn.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Mount
from starlette.types import ASGIApp

from podium.auth.chain import NoAuth
from podium.auth.principal import Authenticator
from podium.errors import ConfigError, PodiumError
from podium.orchestrator import Orchestrator
from podium.server.config import DEFAULT_MAX_BODY_BYTES
from podium.server.deps import ServerState
from podium.server.errors import http_error_handler, podium_error_handler, unexpected_error_handler
from podium.server.hot import Endpoint, ErrorHandler, HotRoutes
from podium.server.http import RequestTiming
from podium.server.routes import (
    anthropic_compat,
    budgets,
    costs,
    docs,
    generation,
    health,
    keys,
    metrics,
    monitoring,
    openai_compat,
    providers,
    rate_limits,
)

log = logging.getLogger("podium.server")


# The generation endpoints, served by ``HotRoutes`` without Starlette's router (see server/hot.py).
# They stay in the route table too, so /docs and the OpenAPI document list them.
_HOT: dict[str, Endpoint] = {
    "/v1/chat/completions": openai_compat.chat_completions,
    "/v1/completions": openai_compat.completions,
    "/v1/embeddings": openai_compat.create_embeddings,
    "/v1/messages": anthropic_compat.create_message,
    "/api/ai/chat/completions": generation.chat,
    "/api/ai/completions": generation.complete,
    "/api/ai/embeddings": generation.embed,
}


# One error mapping for the whole app: Starlette's handlers and the hot routes both use it.
_HANDLERS: dict[type[Exception], ErrorHandler] = {
    PodiumError: podium_error_handler,
    HTTPException: http_error_handler,
    Exception: unexpected_error_handler,
}


class _App(Starlette):
    def build_middleware_stack(self) -> ASGIApp:
        # RequestTiming is outside Starlette's own error middleware, so even a 500 carries the request id.
        return RequestTiming(HotRoutes(self, super().build_middleware_stack(), _HOT, _HANDLERS))


def create_app(
    orchestrator: Orchestrator,
    *,
    authenticator: Authenticator | None = None,
    auth_enabled: bool = True,
    aliases: Mapping[str, str] | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    manage_orchestrator: bool = False,
) -> Starlette:
    """Build the gateway application.

    Args:
        orchestrator: Serves every request.
        authenticator: Turns request headers (``Authorization: Bearer``, ``x-api-key``) into a
            principal. Required unless ``auth_enabled`` is False.
        auth_enabled: False serves every caller as an admin of tenant ``default`` (logged as a
            warning at start-up); only for local development.
        aliases: Public model names mapped to a ``model`` or ``provider/model`` of the tenant.
        max_body_bytes: Larger request bodies are refused with 413.
        manage_orchestrator: Start the orchestrator when the app starts and close it (draining the
            record writer) when the app shuts down.

    Raises:
        ConfigError: auth is enabled but no authenticator was given, or the body limit is not positive.
    """
    if auth_enabled and authenticator is None:
        raise ConfigError(
            "authentication is enabled but no authenticator was given; pass authenticator=... "
            "(API keys or JWT) or, for local development only, auth_enabled=False"
        )
    if max_body_bytes < 1:
        raise ConfigError("max_body_bytes must be at least 1")
    if not auth_enabled:
        log.warning(
            "authentication is DISABLED: every caller is an admin of tenant 'default'. "
            "Never expose this server beyond your machine."
        )
        authenticator = NoAuth()
    assert authenticator is not None

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if manage_orchestrator:
            await orchestrator.start()
        # Authenticators that hold resources (an API key index refreshed from the database) have
        # start/aclose; they start after the orchestrator, whose database they read.
        start = getattr(authenticator, "start", None)
        if start is not None:
            await start()
        try:
            yield
        finally:
            close = getattr(authenticator, "aclose", None)
            if close is not None:
                await close()
            if manage_orchestrator:
                # uvicorn has stopped accepting and waited for in-flight requests by now;
                # closing drains the record writer's queue to the database.
                await orchestrator.aclose()

    routes: list[BaseRoute] = [
        *openai_compat.routes,
        *anthropic_compat.routes,
        Mount(
            "/api/ai",
            routes=[
                *providers.routes,
                *generation.routes,
                *monitoring.routes,
                *costs.routes,
                *budgets.routes,
                *rate_limits.routes,
                *health.routes,
                *metrics.routes,
                *keys.routes,
            ],
        ),
        *health.root_routes,
        *metrics.root_routes,
        *docs.routes,
    ]
    app = _App(
        routes=routes,
        lifespan=lifespan,
        exception_handlers=dict(_HANDLERS),
    )
    app.state.podium = ServerState(
        orchestrator=orchestrator,
        authenticator=authenticator,
        aliases=dict(aliases or {}),
        max_body_bytes=max_body_bytes,
    )
    return app
