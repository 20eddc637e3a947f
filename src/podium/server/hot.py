"""``HotRoutes``: the generation endpoints served without Starlette's router and middleware stack.

Profiling ``podium serve`` under load showed Starlette's layers (two error middlewares, route matching
over every route of the app, the endpoint wrapper and the send wrappers each adds) costing more CPU
per request than authentication and request parsing together. The generation endpoints are the only
ones where that matters, so they are looked up in a dict by exact path and called directly, with the
same error mapping the app's exception handlers apply. Every other request (and a hot path asked with
another method, a trailing slash or under a ``root_path``) goes through Starlette unchanged, so
405s, 404s and redirects keep Starlette's behaviour.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from podium._actor import current_actor

Endpoint = Callable[[Request], Awaitable[Response]]
ErrorHandler = Callable[[Request, Exception], Awaitable[Response]]


class HotRoutes:
    """Dispatches ``POST`` to a few exact paths straight to their endpoints.

    Args:
        app: The Starlette application (endpoints read ``request.app.state``).
        fallback: What serves every other request (Starlette's own middleware stack).
        routes: Exact path -> endpoint, for ``POST`` only.
        handlers: The app's exception handlers (exception class -> handler); the most specific class
            of a raised exception picks its handler, as in Starlette. ``Exception`` must be there.
    """

    def __init__(
        self,
        app: ASGIApp,
        fallback: ASGIApp,
        routes: Mapping[str, Endpoint],
        handlers: Mapping[type[Exception], ErrorHandler],
    ) -> None:
        self.app = app
        self.fallback = fallback
        self.routes = dict(routes)
        self.handlers = dict(handlers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI scope; the audit trail's actor set while serving it ends with it."""
        # Authentication names the caller in a context variable of this task (deps.principal). A
        # server gives each request its own task; an in-process transport (tests, the library's own
        # ASGI use) runs requests in the caller's task, which must not inherit the last caller.
        token = current_actor.set(current_actor.get())
        try:
            endpoint = None
            if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
                endpoint = self.routes.get(scope["path"])
            if endpoint is None:
                await self.fallback(scope, receive, send)
                return
            scope["app"] = self.app
            request = Request(scope, receive)
            try:
                response = await endpoint(request)
            except ClientDisconnect:
                return  # nobody is left to answer
            except Exception as exc:  # mapped by the app's own handlers (a bug: the Exception one, a 500)
                handler = next(self.handlers[c] for c in type(exc).__mro__ if c in self.handlers)
                response = await handler(request, exc)
            # A client that went away while the answer was written is not an error of ours.
            with contextlib.suppress(OSError):
                await response(scope, receive, send)
        finally:
            current_actor.reset(token)
