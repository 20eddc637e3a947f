"""Monitoring under ``/api/ai``: ``GET /statistics``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from podium.server.deps import access, state
from podium.server.http import JSONBytes


async def statistics(request: Request) -> Response:
    """``GET /api/ai/statistics``: requests, errors and latency per provider of the tenant."""
    _, tenant = await access(request, "usage.read")
    return JSONBytes(state(request).orchestrator.get_statistics(tenant))


routes = [Route("/statistics", statistics, methods=["GET"])]
