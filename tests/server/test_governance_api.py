"""Costs, budgets and rate limits over /api/ai, on a real server in front of a simulated upstream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec
import pytest

from podium.orchestrator import Orchestrator
from podium.routing.retry import RetryPolicy
from podium.server import create_app
from podium.testing import SimulatedOpenAI
from tests.server.live import authenticator, serve, token

# A made-up model priced by the provider's own table: $10 / $30 per million tokens.
PRICES = {"input": 10.0, "output": 30.0}


def auth(role: str = "tenant_admin", tenant: str = "acme") -> dict[str, str]:
    return {"authorization": f"Bearer {token(role, tenant)}"}  # type: ignore[arg-type]


class Answer(msgspec.Struct):
    status: int
    body: Any
    headers: dict[str, str]


async def call(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> Answer:
    async with (
        aiohttp.ClientSession() as s,
        s.request(method, url, json=body, headers=auth() if headers is None else headers) as r,
    ):
        raw = await r.read()
        parsed = msgspec.json.decode(raw) if r.content_type == "application/json" and raw else raw
        return Answer(r.status, parsed, {k.lower(): v for k, v in r.headers.items()})


def sse_chunks(raw: bytes) -> list[dict[str, Any]]:
    events = [line[6:] for line in raw.decode().splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    return [msgspec.json.decode(e) for e in events[:-1]]


@pytest.fixture
async def api() -> AsyncIterator[tuple[str, SimulatedOpenAI]]:
    async with SimulatedOpenAI("oa", models=("house-model",)) as up:
        orch = Orchestrator(retry=RetryPolicy(max_retries=0))
        for tenant in ("acme", "globex"):
            await orch.create_provider(
                type="openai",
                name="oa",
                tenant=tenant,
                base_url=up.base_url,
                api_key="sk-up",
                default_model="house-model",
                prices=PRICES,
            )
        try:
            async with serve(create_app(orch, authenticator=authenticator())) as base:
                yield base, up
        finally:
            await orch.aclose()


CHAT = {"messages": "price me", "maxTokens": 20}


async def test_costs_are_the_sum_of_the_answers_costs_per_tenant(api: tuple[str, SimulatedOpenAI]) -> None:
    base, _ = api
    first = await call("POST", f"{base}/api/ai/chat/completions", CHAT)
    streamed = await call("POST", f"{base}/api/ai/chat/completions", {**CHAT, "stream": True})
    assert first.status == streamed.status == 200
    last = sse_chunks(streamed.body)[-1]
    spent = first.body["cost"] + last["cost"]
    assert first.body["cost"] > 0 and last["cost"] > 0

    summary = await call("GET", f"{base}/api/ai/costs")
    assert summary.status == 200
    assert summary.body["tenant"] == "acme" and summary.body["requests"] == 2
    assert summary.body["total_cost"] == pytest.approx(spent)
    assert summary.body["today"] == pytest.approx(spent)
    assert summary.body["by_provider"] == {"oa": pytest.approx(spent)}

    other = await call("GET", f"{base}/api/ai/costs", headers=auth("viewer", "globex"))
    assert other.status == 200 and other.body["total_cost"] == 0 and other.body["requests"] == 0
    assert (await call("GET", f"{base}/api/ai/costs?tenant=globex")).status == 404
    as_admin = await call("GET", f"{base}/api/ai/costs?tenant=acme", headers=auth("admin", "globex"))
    assert as_admin.body["total_cost"] == pytest.approx(spent)


async def test_analytics_windows(api: tuple[str, SimulatedOpenAI]) -> None:
    base, _ = api
    answers = [await call("POST", f"{base}/api/ai/chat/completions", CHAT) for _ in range(3)]
    spent = sum(a.body["cost"] for a in answers)
    week = await call("GET", f"{base}/api/ai/costs/analytics?window=7d")
    assert week.status == 200 and week.body["window"] == "7d"
    assert week.body["total_requests"] == 3 and week.body["total_cost"] == pytest.approx(spent)
    assert week.body["top_models"][0]["model"] == "house-model"
    assert len(week.body["series"]) == 7
    day = await call("GET", f"{base}/api/ai/costs/analytics?window=24h")
    assert day.status == 200 and len(day.body["series"]) == 24
    assert day.body["total_cost"] == pytest.approx(spent)
    default = await call("GET", f"{base}/api/ai/costs/analytics")
    assert default.body["window"] == "7d"
    bad = await call("GET", f"{base}/api/ai/costs/analytics?window=fortnight")
    assert bad.status == 400
    assert "24h, 7d or 30d" in bad.body["error"]["message"] and bad.body["error"]["param"] == "window"


async def test_budget_set_get_and_a_hard_budget_refuses_with_402(api: tuple[str, SimulatedOpenAI]) -> None:
    base, up = api
    budget = {
        "tenant": "acme",
        "daily": 0.001,
        "monthly": 1.0,
        "alertEmails": ["ops@acme.example"],
        "enforceHardLimit": True,
        "thresholds": [0.5, 1.0],
    }
    made = await call("POST", f"{base}/api/ai/budgets", budget)
    assert made.status == 200, made.body
    assert made.body["enforce_hard_limit"] is True
    assert {p["period"]: p["limit"] for p in made.body["periods"]} == {"daily": 0.001, "monthly": 1.0}

    got = await call("GET", f"{base}/api/ai/budgets/acme", headers=auth("viewer"))
    assert got.status == 200 and got.body["alert_emails"] == ["ops@acme.example"]
    assert got.body["thresholds"] == [0.5, 1.0]

    # At $30/M output tokens, 100 000 tokens cannot fit in $0.001; 10 can.
    small = await call("POST", f"{base}/api/ai/chat/completions", {"messages": "hi", "maxTokens": 10})
    assert small.status == 200
    calls = len(up.requests)
    huge = await call("POST", f"{base}/api/ai/chat/completions", {"messages": "hi", "maxTokens": 100_000})
    assert huge.status == 402
    assert huge.body["error"]["code"] == "budget_exceeded"
    assert "budget" in huge.body["error"]["message"]
    assert len(up.requests) == calls  # refused before any upstream call
    v1 = {"model": "house-model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 100_000}
    assert (await call("POST", f"{base}/v1/chat/completions", v1)).status == 402

    spent = await call("GET", f"{base}/api/ai/budgets/acme")
    daily = next(p for p in spent.body["periods"] if p["period"] == "daily")
    assert daily["spent"] == pytest.approx(small.body["cost"]) and daily["reserved"] == 0


async def test_budgets_are_tenant_isolated_and_validated(api: tuple[str, SimulatedOpenAI]) -> None:
    base, _ = api
    assert (await call("POST", f"{base}/api/ai/budgets", {"tenant": "globex", "daily": 5})).status == 404
    assert (await call("GET", f"{base}/api/ai/budgets/globex")).status == 404
    assert (await call("GET", f"{base}/api/ai/budgets/acme")).status == 404  # none set yet
    admin = auth("admin", "acme")
    made = await call("POST", f"{base}/api/ai/budgets", {"tenant": "globex", "monthly": 5}, admin)
    assert made.status == 200 and made.body["tenant"] == "globex"
    snake = await call("POST", f"{base}/api/ai/budgets", {"daily": 2, "enforce_hard_limit": True})
    assert snake.status == 200 and snake.body["tenant"] == "acme" and snake.body["enforce_hard_limit"]
    for bad in ({"daily": -1}, {"alertEmails": ["nobody"]}, {"weekly": 3}, {"enforceHardLimit": True}):
        answer = await call("POST", f"{base}/api/ai/budgets", bad)
        assert answer.status == 400, bad
    assert (await call("POST", f"{base}/api/ai/budgets", {"daily": 1}, auth("user"))).status == 403
    key_budget = await call("POST", f"{base}/api/ai/budgets", {"daily": 1, "keyId": "k1"})
    assert key_budget.status == 503  # per-key budgets need the key store to check the key is acme's
    assert "storage" in key_budget.body["error"]["message"]


async def test_a_rate_limit_admits_exactly_n_then_429_and_reset_works(
    api: tuple[str, SimulatedOpenAI],
) -> None:
    base, _ = api
    made = await call(
        "POST", f"{base}/api/ai/rate-limits", {"scope": "tenant", "limits": {"requestsPerMinute": 3}}
    )
    assert made.status == 200, made.body
    assert made.body["target"] == "acme" and made.body["limits"] == {"requestsPerMinute": 3.0, "maxWait": 0.0}

    seen = []
    for body in (CHAT, {**CHAT, "stream": True}, CHAT):
        answer = await call("POST", f"{base}/api/ai/chat/completions", body)
        assert answer.status == 200
        assert answer.headers["x-ratelimit-limit-requests"] == "3"
        seen.append(answer.headers["x-ratelimit-remaining-requests"])
    assert seen == ["2", "1", "0"]

    refused = await call("POST", f"{base}/api/ai/chat/completions", CHAT)
    assert refused.status == 429
    assert refused.body["error"]["type"] == "rate_limit_error"
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["x-ratelimit-limit-requests"] == "3"
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert refused.headers["x-ratelimit-reset-requests"].endswith("s")
    v1 = {"model": "house-model", "messages": [{"role": "user", "content": "hi"}]}
    v1_refused = await call("POST", f"{base}/v1/chat/completions", v1)
    assert v1_refused.status == 429 and v1_refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert "retry-after" in v1_refused.headers

    status = await call("GET", f"{base}/api/ai/rate-limits", headers=auth("viewer"))
    assert status.status == 200
    (limit,) = status.body["limits"]
    assert (limit["scope"], limit["target"]) == ("tenant", "acme")
    assert limit["levels"][0]["remaining"] < 1

    reset = await call("DELETE", f"{base}/api/ai/rate-limits/oa/acme")
    assert reset.status == 200 and reset.body["limits"][0]["levels"][0]["remaining"] == 3
    again = await call("POST", f"{base}/api/ai/chat/completions", CHAT)
    assert again.status == 200 and again.headers["x-ratelimit-remaining-requests"] == "2"


async def test_a_provider_limit_applies_to_completions_and_embeddings_too(
    api: tuple[str, SimulatedOpenAI],
) -> None:
    base, _ = api
    body = {"scope": "provider", "target": "oa", "limits": {"requests_per_minute": 2}}
    assert (await call("POST", f"{base}/api/ai/rate-limits", body)).status == 200
    done = await call("POST", f"{base}/api/ai/completions", {"prompt": "hi", "maxTokens": 5})
    assert done.status == 200 and done.headers["x-ratelimit-remaining-requests"] == "1"
    embedded = await call("POST", f"{base}/api/ai/embeddings", {"input": ["hi"]})
    assert embedded.status == 200 and embedded.headers["x-ratelimit-remaining-requests"] == "0"
    refused = await call("POST", f"{base}/api/ai/embeddings", {"input": ["hi"]})
    assert refused.status == 429 and refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert "retry-after" in refused.headers
    listed = await call("GET", f"{base}/api/ai/rate-limits")
    # Stored tenant-qualified: it never throttles another tenant's provider named "oa".
    assert [(x["scope"], x["target"]) for x in listed.body["limits"]] == [("provider", "acme/oa")]


async def test_rate_limit_targets_are_tenant_isolated_and_validated(api: tuple[str, SimulatedOpenAI]) -> None:
    base, _ = api
    url = f"{base}/api/ai/rate-limits"
    limits = {"requestsPerSecond": 5}
    assert (await call("POST", url, {"scope": "tenant", "target": "globex", "limits": limits})).status == 404
    assert (await call("POST", url, {"scope": "provider", "target": "nope", "limits": limits})).status == 404
    assert (await call("POST", url, {"tenant": "globex", "scope": "tenant", "limits": limits})).status == 404
    keyed = await call("POST", url, {"scope": "key", "target": "k1", "limits": limits})
    assert keyed.status == 503 and "storage" in keyed.body["error"]["message"]
    assert (await call("DELETE", f"{url}/oa/globex")).status == 404
    assert (await call("DELETE", f"{url}/nope/acme")).status == 404
    assert (await call("POST", url, {"limits": limits}, auth("viewer"))).status == 403

    admin = auth("admin", "acme")
    made = await call("POST", url, {"scope": "tenant", "target": "globex", "limits": limits}, admin)
    assert made.status == 200 and made.body["target"] == "globex"
    mine = await call("GET", url)
    assert mine.body == {"tenant": "acme", "limits": []}
    theirs = await call("GET", url, headers=auth("viewer", "globex"))
    assert [x["target"] for x in theirs.body["limits"]] == ["globex"]

    for bad, param in (
        ({"scope": "galaxy", "limits": limits}, "scope"),
        ({"limits": {"requestsPerFortnight": 1}}, "limits"),
        ({"limits": {"requestsPerSecond": -1}}, "limits"),
        ({"limits": 5}, "limits"),
        ({"scope": "provider", "limits": limits}, "target"),
        ({"limits": limits, "extra": 1}, "extra"),
    ):
        answer = await call("POST", url, bad)
        assert answer.status == 400, bad
        assert answer.body["error"]["param"] == param, answer.body


def _served(app: Any) -> set[tuple[str, str]]:
    from starlette.routing import Mount, Route

    out: set[tuple[str, str]] = set()
    for route in app.routes:
        inner = route.routes if isinstance(route, Mount) else [route]
        prefix = route.path if isinstance(route, Mount) else ""
        for r in inner:
            assert isinstance(r, Route)
            for method in (r.methods or set()) - {"HEAD"}:
                out.add((method.lower(), prefix + r.path.replace(":path}", "}")))
    return out - {("get", "/openapi.json"), ("get", "/docs")}


async def test_openapi_documents_every_served_route_with_its_errors(api: tuple[str, SimulatedOpenAI]) -> None:
    base, _ = api
    doc = (await call("GET", f"{base}/openapi.json", headers={})).body
    documented = {(method, path) for path, ops in doc["paths"].items() for method in ops}
    async with Orchestrator() as orch:
        assert documented == _served(create_app(orch, authenticator=authenticator()))
    paths = doc["paths"]
    assert {"400", "401", "403", "404"} <= set(paths["/api/ai/costs/analytics"]["get"]["responses"])
    assert "503" in paths["/api/ai/keys"]["post"]["responses"]
    assert "402" in paths["/api/ai/chat/completions"]["post"]["responses"]
    assert (
        "x-ratelimit-remaining-requests"
        in paths["/v1/chat/completions"]["post"]["responses"]["200"]["headers"]
    )
    assert paths["/healthz"]["get"]["security"] == []
    assert "text/plain; version=0.0.4" in paths["/metrics"]["get"]["responses"]["200"]["content"]
    assert (
        "enforceHardLimit"
        in paths["/api/ai/budgets"]["post"]["requestBody"]["content"]["application/json"]["schema"][
            "properties"
        ]
    )


async def test_v1_answers_carry_the_rate_limit_headers_streams_included(
    api: tuple[str, SimulatedOpenAI],
) -> None:
    base, _ = api
    made = await call(
        "POST", f"{base}/api/ai/rate-limits", {"scope": "tenant", "limits": {"requestsPerMinute": 5}}
    )
    assert made.status == 200
    v1 = {"model": "house-model", "messages": [{"role": "user", "content": "hi"}]}
    anthropic = {"model": "house-model", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    seen = []
    for url, body in (
        ("/v1/chat/completions", v1),
        ("/v1/chat/completions", {**v1, "stream": True}),
        ("/v1/embeddings", {"model": "house-model", "input": "hi"}),
        ("/v1/messages", anthropic),
        ("/v1/messages", {**anthropic, "stream": True}),
    ):
        answer = await call("POST", f"{base}{url}", body)
        assert answer.status == 200, (url, answer.body)
        assert answer.headers["x-ratelimit-limit-requests"] == "5"
        seen.append(answer.headers["x-ratelimit-remaining-requests"])
    assert seen == ["4", "3", "2", "1", "0"]
