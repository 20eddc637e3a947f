"""Prometheus metrics of one Orchestrator, in its own ``CollectorRegistry`` (never the global one).

Recording is a dict lookup and an addition per value (``podium.observability.series``: no lock, no I/O);
the families become Prometheus metrics, and circuit states and the record writer's queue depth are
read, only when metrics are scraped.

Families (all prefixed ``podium_``):

==================================  =========  ==============================================
requests_total                      counter    caller requests by tenant, kind, outcome
request_errors_total                counter    failed caller requests by error class
request_duration_seconds            histogram  caller request time, every attempt included
overhead_seconds                    histogram  request time not spent waiting on upstreams
upstream_requests_total             counter    upstream attempts by provider, model, outcome
upstream_errors_total               counter    failed attempts by error class
upstream_latency_seconds            histogram  upstream attempt time
circuit_skips_total                 counter    attempts not made because a circuit was open
tokens_total                        counter    tokens by kind (prompt, completion)
cost_usd_total                      counter    spend in USD
in_flight_requests                  gauge      caller requests under way
rate_limit_rejections_total         counter    requests refused by podium's own limits
budget_rejections_total             counter    requests refused by a hard budget
circuit_state                       gauge      0 closed, 1 half-open, 2 open (per provider/model)
provider_healthy                    gauge      1 when the provider's status is not unhealthy
record_queue_depth                  gauge      records waiting for the background writer
==================================  =========  ==============================================
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from podium.health.breaker import STATE_VALUES
from podium.health.registry import HealthRegistry
from podium.observability.series import CounterSeries, GaugeSeries, HistogramSeries
from podium.types import Usage

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 120.0)
# podium's own share of a request should be a millisecond or less; the buckets look closely there.
_OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)


class _HealthCollector(Collector):
    """Reads circuit states and provider health at scrape time."""

    def __init__(self, health: HealthRegistry) -> None:
        self.health = health

    def collect(self) -> Iterable[Metric]:
        circuit = GaugeMetricFamily(
            "podium_circuit_state",
            "Circuit state: 0 closed, 1 half-open, 2 open (model empty: the provider's own circuit)",
            labels=["tenant", "provider", "model"],
        )
        healthy = GaugeMetricFamily(
            "podium_provider_healthy",
            "1 when the provider is routable (not unhealthy)",
            labels=["tenant", "provider"],
        )
        for tenant, provider, model, state in self.health.circuits():
            circuit.add_metric([tenant, provider, model], STATE_VALUES[state])
            if not model:
                report = self.health.provider_health(tenant, provider)
                healthy.add_metric([tenant, provider], 1.0 if report.healthy else 0.0)
        yield circuit
        yield healthy


class PodiumMetrics:
    """The metrics of one Orchestrator, and the methods every layer records into.

    Args:
        registry: Where the metrics live (a fresh ``CollectorRegistry`` by default).
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        attempt = ("tenant", "provider", "model")
        self.requests = CounterSeries("podium_requests", "Caller requests", ("tenant", "kind", "outcome"))
        self.request_errors = CounterSeries(
            "podium_request_errors", "Failed caller requests by error class", ("tenant", "error")
        )
        self.request_duration = HistogramSeries(
            "podium_request_duration_seconds",
            "Caller request time, every attempt included",
            ("tenant", "kind"),
            _LATENCY_BUCKETS,
        )
        self.overhead = HistogramSeries(
            "podium_overhead_seconds",
            "Request time not spent waiting on upstream providers",
            ("tenant",),
            _OVERHEAD_BUCKETS,
        )
        self.attempts = CounterSeries("podium_upstream_requests", "Upstream attempts", (*attempt, "outcome"))
        self.upstream_errors = CounterSeries(
            "podium_upstream_errors", "Failed upstream attempts by error class", (*attempt, "error")
        )
        self.upstream_latency = HistogramSeries(
            "podium_upstream_latency_seconds",
            "Upstream attempt time (to the first chunk for streams)",
            attempt,
            _LATENCY_BUCKETS,
        )
        self.circuit_skips = CounterSeries(
            "podium_circuit_skips", "Attempts not made because a circuit was open", ("tenant", "provider")
        )
        self.tokens = CounterSeries("podium_tokens", "Tokens", (*attempt, "kind"))
        self.cost = CounterSeries("podium_cost_usd", "Spend in US dollars", attempt)
        self.in_flight = GaugeSeries("podium_in_flight_requests", "Caller requests under way", ("tenant",))
        self.rate_limit_rejections = CounterSeries(
            "podium_rate_limit_rejections",
            "Requests refused by podium's own rate limits",
            ("tenant", "scope"),
        )
        self.budget_rejections = CounterSeries(
            "podium_budget_rejections", "Requests refused by a hard budget", ("tenant",)
        )
        for family in (
            self.requests,
            self.request_errors,
            self.request_duration,
            self.overhead,
            self.attempts,
            self.upstream_errors,
            self.upstream_latency,
            self.circuit_skips,
            self.tokens,
            self.cost,
            self.in_flight,
            self.rate_limit_rejections,
            self.budget_rejections,
        ):
            self.registry.register(family)
        self._queue_depth: Gauge | None = None
        self._health: _HealthCollector | None = None

    # ------------------------------------------------------------- recording

    def request_started(self, tenant: str) -> None:
        """A caller request began (pair with ``request_finished``)."""
        self.in_flight.add((tenant,), 1.0)

    def request_finished(
        self, tenant: str, kind: str, seconds: float, upstream_seconds: float, error: BaseException | None
    ) -> None:
        """A caller request ended after ``seconds``, of which ``upstream_seconds`` waiting on providers."""
        self.in_flight.add((tenant,), -1.0)
        self.requests.inc((tenant, kind, "error" if error is not None else "ok"))
        if error is not None:
            self.request_errors.inc((tenant, type(error).__name__))
        self.request_duration.observe((tenant, kind), seconds)
        self.overhead.observe((tenant,), max(0.0, seconds - upstream_seconds))

    def attempt(
        self, tenant: str, provider: str, model: str, seconds: float, error: BaseException | None
    ) -> None:
        """One upstream attempt ended."""
        self.attempts.inc((tenant, provider, model, "error" if error is not None else "ok"))
        if error is not None:
            self.upstream_errors.inc((tenant, provider, model, type(error).__name__))
        self.upstream_latency.observe((tenant, provider, model), seconds)

    def circuit_skip(self, tenant: str, provider: str) -> None:
        """An attempt was not made because the provider's (or model's) circuit was open."""
        self.circuit_skips.inc((tenant, provider))

    def record_tokens(self, tenant: str, provider: str, model: str, usage: Usage) -> None:
        """Tokens one answer used."""
        self.tokens.inc((tenant, provider, model, "prompt"), usage.prompt_tokens)
        self.tokens.inc((tenant, provider, model, "completion"), usage.completion_tokens)

    def record_cost(self, tenant: str, provider: str, model: str, usd: float) -> None:
        """Spend of one answer in USD (costs layer)."""
        if usd > 0:
            self.cost.inc((tenant, provider, model), usd)

    def record_rate_limited(self, tenant: str, scope: str) -> None:
        """A request refused by podium's own rate limit (``scope``: tenant, provider, key)."""
        self.rate_limit_rejections.inc((tenant, scope))

    def record_budget_rejected(self, tenant: str) -> None:
        """A hard budget refused a request."""
        self.budget_rejections.inc((tenant,))

    # ---------------------------------------------------------- scrape-time

    def watch_health(self, health: HealthRegistry) -> None:
        """Report circuit states and provider health from ``health`` at scrape time."""
        if self._health is not None:
            self.registry.unregister(self._health)
        self._health = _HealthCollector(health)
        self.registry.register(self._health)

    def watch_record_queue(self, depth: Callable[[], float]) -> None:
        """Report the record writer's queue depth, read at scrape time (e.g. ``writer.stats().queued``)."""
        if self._queue_depth is None:
            self._queue_depth = Gauge(
                "record_queue_depth",
                "Records waiting for the background writer",
                namespace="podium",
                registry=self.registry,
            )
        self._queue_depth.set_function(depth)

    # --------------------------------------------------------------- output

    def render(self) -> bytes:
        """The Prometheus text exposition (serve with ``CONTENT_TYPE``)."""
        return generate_latest(self.registry)

    def snapshot(self) -> dict[str, Any]:
        """Every metric as JSON-ready data: ``{family: {"type", "help", "samples": [...]}}``."""
        out: dict[str, Any] = {}
        for family in self.registry.collect():
            out[family.name] = {
                "type": family.type,
                "help": family.documentation,
                "samples": [
                    {"name": s.name, "labels": dict(s.labels), "value": s.value} for s in family.samples
                ],
            }
        return out
