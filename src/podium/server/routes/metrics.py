"""Metrics: ``GET /api/ai/metrics`` (JSON) and ``GET /metrics`` (Prometheus text exposition).

Both need the ``health.read`` permission; Prometheus sends the key as a bearer token
(``authorization: {credentials: <key>}`` in its scrape config). An admin who names no tenant sees every
tenant's series (the operator's scrape); anyone else, or an admin with ``?tenant=``, sees only the
series labelled with that tenant.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from podium.observability.metrics import CONTENT_TYPE
from podium.server.deps import access, state
from podium.server.http import JSONBytes


async def _scope(request: Request) -> str | None:
    """The tenant whose series the caller may see; None for every tenant."""
    who, tenant = await access(request, "health.read")
    named = request.query_params.get("tenant") or request.headers.get("x-podium-tenant")
    return None if who.role == "admin" and named is None else tenant


class _TenantView(Collector):
    """The registry's families with only the samples labelled with one tenant."""

    def __init__(self, source: Collector, tenant: str) -> None:
        self.source = source
        self.tenant = tenant

    def collect(self) -> Iterable[Metric]:
        for family in self.source.collect():
            view = Metric(family.name, family.documentation, family.type, family.unit)
            view.samples = [s for s in family.samples if s.labels.get("tenant") == self.tenant]
            if view.samples:
                yield view


def _snapshot(families: Iterable[Metric]) -> dict[str, Any]:
    return {
        f.name: {
            "type": f.type,
            "help": f.documentation,
            "samples": [{"name": s.name, "labels": dict(s.labels), "value": s.value} for s in f.samples],
        }
        for f in families
    }


async def metrics_json(request: Request) -> Response:
    """``GET /api/ai/metrics``: every metric as ``{family: {"type", "help", "samples": [...]}}``."""
    tenant = await _scope(request)
    metrics = state(request).orchestrator.metrics
    if tenant is None:
        return JSONBytes(metrics.snapshot())
    return JSONBytes(_snapshot(_TenantView(metrics.registry, tenant).collect()))


async def metrics_text(request: Request) -> Response:
    """``GET /metrics``: the Prometheus text exposition."""
    tenant = await _scope(request)
    metrics = state(request).orchestrator.metrics
    body = metrics.render() if tenant is None else generate_latest(_TenantView(metrics.registry, tenant))
    return Response(body, media_type=CONTENT_TYPE)


routes = [Route("/metrics", metrics_json, methods=["GET"])]
root_routes = [Route("/metrics", metrics_text, methods=["GET"])]
