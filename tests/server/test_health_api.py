"""Provider health, liveness and metrics over HTTP, on a real server in front of a simulated upstream."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from podium.orchestrator import Orchestrator
from podium.routing.retry import RetryPolicy
from podium.server import create_app
from podium.testing import SimulatedOpenAI
from tests.server.live import authenticator, serve
from tests.server.test_governance_api import auth, call


@pytest.fixture
async def api() -> AsyncIterator[tuple[str, SimulatedOpenAI]]:
    async with SimulatedOpenAI("oa") as up, SimulatedOpenAI("spare") as spare:
        orch = Orchestrator(retry=RetryPolicy(max_retries=0))
        for tenant, name, server in (("acme", "oa", up), ("acme", "spare", spare), ("globex", "gx", spare)):
            await orch.create_provider(
                type="openai",
                name=name,
                tenant=tenant,
                base_url=server.base_url,
                api_key="sk-up",
                default_model="gpt-4o-mini",
                priority=1 if name == "oa" else 2,
            )
        try:
            async with serve(create_app(orch, authenticator=authenticator())) as base:
                yield base, up
        finally:
            await orch.aclose()


CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


async def test_liveness_needs_no_credentials(api: tuple[str, SimulatedOpenAI]) -> None:
    alive = await call("GET", f"{api[0]}/healthz", headers={})
    assert alive.status == 200 and alive.body == {"status": "ok"}
    assert (await call("GET", f"{api[0]}/api/ai/health", headers={})).status == 401


async def test_an_outage_opens_the_circuit_and_health_shows_it(api: tuple[str, SimulatedOpenAI]) -> None:
    base, up = api
    summary = await call("GET", f"{base}/api/ai/health", headers=auth("user"))
    assert summary.status == 200
    assert (summary.body["total_providers"], summary.body["healthy"], summary.body["unhealthy"]) == (2, 2, 0)
    assert set(summary.body["providers"]) == {"acme/oa", "acme/spare"}

    up.fail(503, body={"error": {"message": "overloaded", "type": "server_error"}})
    for _ in range(5):  # five faults in a row open the circuit (breaker.consecutive_failures)
        answer = await call("POST", f"{base}/v1/chat/completions", CHAT)
        assert answer.status == 200 and answer.headers["x-podium-provider"] == "spare"  # failed over

    oa = await call("GET", f"{base}/api/ai/health/oa", headers=auth("viewer"))
    assert oa.status == 200
    assert (oa.body["status"], oa.body["healthy"], oa.body["circuit"]) == ("unhealthy", False, "open")
    assert oa.body["retry_after"] > 0 and oa.body["errors_by_class"]
    summary = await call("GET", f"{base}/api/ai/health")
    assert (summary.body["healthy"], summary.body["unhealthy"]) == (1, 1)
    assert summary.body["providers"]["acme/spare"]["circuit"] == "closed"

    assert (await call("GET", f"{base}/api/ai/health/gx")).status == 404  # globex's provider
    assert (await call("GET", f"{base}/api/ai/health/nope")).status == 404
    theirs = await call(
        "GET", f"{base}/api/ai/health/gx", headers=auth("admin", "acme") | {"x-podium-tenant": "globex"}
    )
    assert theirs.status == 200 and theirs.body["circuit"] == "closed"


def _samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


async def test_prometheus_metrics_count_the_requests_made(api: tuple[str, SimulatedOpenAI]) -> None:
    base, up = api
    for _ in range(3):
        assert (await call("POST", f"{base}/v1/chat/completions", CHAT)).status == 200
    assert (await call("POST", f"{base}/api/ai/embeddings", {"input": "x"})).status == 200
    globex = auth("user", "globex")
    assert (await call("POST", f"{base}/v1/chat/completions", CHAT, globex)).status == 200
    up.fail(400, body={"error": {"message": "bad", "type": "invalid_request_error"}}, times=1)
    # The caller's own mistake, as the upstream judged it: no failover, an error outcome.
    assert (await call("POST", f"{base}/v1/chat/completions", CHAT)).status == 400

    scraped = await call("GET", f"{base}/metrics", headers=auth("admin", "acme"))
    assert scraped.status == 200
    assert scraped.headers["content-type"].startswith("text/plain; version=0.0.4")
    requests = _samples(scraped.body.decode(), "podium_requests_total")
    assert requests == {
        (("kind", "chat"), ("outcome", "ok"), ("tenant", "acme")): 3,
        (("kind", "chat"), ("outcome", "error"), ("tenant", "acme")): 1,
        (("kind", "embedding"), ("outcome", "ok"), ("tenant", "acme")): 1,
        (("kind", "chat"), ("outcome", "ok"), ("tenant", "globex")): 1,
    }

    mine = await call("GET", f"{base}/metrics", headers=auth("viewer"))
    assert mine.status == 200
    tenants = {
        s.labels.get("tenant") for f in text_string_to_metric_families(mine.body.decode()) for s in f.samples
    }
    assert tenants == {"acme"}
    assert (await call("GET", f"{base}/metrics", headers={})).status == 401
    assert (await call("GET", f"{base}/metrics?tenant=globex", headers=auth("viewer"))).status == 404

    snapshot = await call("GET", f"{base}/api/ai/metrics", headers=auth("user"))
    assert snapshot.status == 200
    samples = snapshot.body["podium_requests"]["samples"]
    assert {s["labels"]["tenant"] for s in samples} == {"acme"}
    assert sum(s["value"] for s in samples if s["name"] == "podium_requests_total") == 5
