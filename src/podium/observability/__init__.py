"""Observability: Prometheus metrics (one registry per Orchestrator) and optional OpenTelemetry spans."""

from podium.observability.metrics import PodiumMetrics
from podium.observability.tracing import span, tracing_enabled

__all__ = ["PodiumMetrics", "span", "tracing_enabled"]
