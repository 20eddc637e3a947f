"""Provider health under ``/api/ai/health``, and the unauthenticated liveness probe ``GET /healthz``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from podium.server.deps import access, state
from podium.server.http import JSONBytes

_ALIVE = b'{"status":"ok"}'


async def health_summary(request: Request) -> Response:
    """``GET /api/ai/health``: counts of the tenant's providers by status, and each one."""
    _, tenant = await access(request, "health.read")
    return JSONBytes(state(request).orchestrator.get_health_summary(tenant))


async def provider_health(request: Request) -> Response:
    """``GET /api/ai/health/{name}``: one provider's status, circuit, error rate, latency, throughput."""
    _, tenant = await access(request, "health.read")
    return JSONBytes(state(request).orchestrator.get_provider_health(request.path_params["name"], tenant))


async def liveness(request: Request) -> Response:
    """``GET /healthz``: 200 while the process serves HTTP; no authentication, no upstream or store I/O.

    For load balancers and orchestrators' liveness probes. Provider health is ``/api/ai/health``.
    """
    return JSONBytes(_ALIVE)


routes = [
    Route("/health", health_summary, methods=["GET"]),
    Route("/health/{name}", provider_health, methods=["GET"]),
]
root_routes = [Route("/healthz", liveness, methods=["GET"])]
