"""Cost reporting under ``/api/ai``: ``GET /costs`` and ``GET /costs/analytics`` (the seed's REST API)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from podium.server.deps import access, state
from podium.server.http import JSONBytes


async def cost_summary(request: Request) -> Response:
    """``GET /api/ai/costs``: total, today, this month, monthly projection, by provider and by model."""
    _, tenant = await access(request, "usage.read")
    return JSONBytes(await state(request).orchestrator.get_cost_summary(tenant))


async def cost_analytics(request: Request) -> Response:
    """``GET /api/ai/costs/analytics?window=7d``: spend, tokens, top models and a series over a window.

    ``window`` is ``<n>h`` (hourly series, up to 168h) or ``<n>d`` (daily series, up to 366d); anything
    else is a 400 naming the valid forms.
    """
    _, tenant = await access(request, "usage.read")
    window = request.query_params.get("window", "7d")
    return JSONBytes(await state(request).orchestrator.get_analytics(window, tenant))


routes = [
    Route("/costs", cost_summary, methods=["GET"]),
    Route("/costs/analytics", cost_analytics, methods=["GET"]),
]
