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

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from podium.errors import PodiumError
from podium.server.errors import http_error_handler, podium_error_handler, unexpected_error_handler

Endpoint = Callable[[Request], Awaitable[Response]]


class HotRoutes:
    """Dispatches ``POST`` to a few exact paths straight to their endpoints.

    Args:
        app: The Starlette application (endpoints read ``request.app.state``).
        fallback: What serves every other request (Starlette's own middleware stack).
        routes: Exact path -> endpoint, for ``POST`` only.
    """

    def __init__(self, app: ASGIApp, fallback: ASGIApp, routes: Mapping[str, Endpoint]) -> None:
        self.app = app
        self.fallback = fallback
        self.routes = dict(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI scope."""
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
        except PodiumError as exc:
            response = await podium_error_handler(request, exc)
        except HTTPException as exc:
            response = await http_error_handler(request, exc)
        except Exception as exc:  # a bug: logged with its traceback, answered as a 500
            response = await unexpected_error_handler(request, exc)
        # A client that went away while the answer was written is not an error of ours.
        with contextlib.suppress(OSError):
            await response(scope, receive, send)
