"""API key administration over HTTP with real key authentication (ApiKeyAuthenticator on SQLite)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from podium.auth import ApiKeyAuthenticator
from podium.orchestrator import Orchestrator
from podium.routing.retry import RetryPolicy
from podium.server import create_app
from podium.storage import ApiKeys, Database, migrate
from podium.testing import SimulatedOpenAI
from tests.server.live import authenticator, serve
from tests.server.test_governance_api import call

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


@dataclass
class Gateway:
    base: str
    admin: dict[str, str]  # an admin of tenant "ops", made the way `podium keys create` makes it
    up: SimulatedOpenAI


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Gateway]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}"
    await migrate(url)
    db = Database(url)
    async with SimulatedOpenAI("oa") as up:
        orch = Orchestrator(retry=RetryPolicy(max_retries=0))
        for tenant in ("acme", "globex"):
            await orch.create_provider(
                type="openai",
                name="oa",
                tenant=tenant,
                base_url=up.base_url,
                api_key="sk-up",
                default_model="gpt-4o-mini",
            )
        auth = ApiKeyAuthenticator(ApiKeys(db), refresh_interval=3600)
        try:
            async with serve(create_app(orch, authenticator=auth)) as base:
                root = await auth.create("ops", "admin", "bootstrap")
                yield Gateway(base, bearer(root.plaintext), up)
        finally:
            await orch.aclose()
            await db.dispose()


async def test_a_created_key_works_at_once_and_a_revoked_one_stops(gw: Gateway) -> None:
    keys = f"{gw.base}/api/ai/keys"
    made = await call("POST", keys, {"role": "tenant_admin", "name": "acme ops", "tenant": "acme"}, gw.admin)
    assert made.status == 201, made.body
    assert made.body["key"].startswith("pdm-") and made.body["key"].startswith(made.body["prefix"])
    assert (made.body["tenant"], made.body["role"], made.body["name"]) == ("acme", "tenant_admin", "acme ops")
    acme_admin = bearer(made.body["key"])

    user = await call("POST", keys, {"role": "user", "name": "app"}, acme_admin)
    assert user.status == 201 and user.body["tenant"] == "acme"
    answer = await call("POST", f"{gw.base}/v1/chat/completions", CHAT, bearer(user.body["key"]))
    assert answer.status == 200 and answer.body["choices"][0]["message"]["content"]

    listed = await call("GET", keys, headers=acme_admin)
    assert listed.status == 200
    assert [k["name"] for k in listed.body["keys"]] == ["acme ops", "app"]
    assert made.body["key"] not in str(listed.body) and user.body["key"] not in str(listed.body)
    assert all("key" not in k and "key_hash" not in k for k in listed.body["keys"])

    revoked = await call("DELETE", f"{keys}/{user.body['id']}", headers=acme_admin)
    assert revoked.status == 200 and revoked.body["revoked_at"] is not None
    refused = await call("POST", f"{gw.base}/v1/chat/completions", CHAT, bearer(user.body["key"]))
    assert refused.status == 401 and "revoked" in refused.body["error"]["message"]
    assert [k["name"] for k in (await call("GET", keys, headers=acme_admin)).body["keys"]] == ["acme ops"]
    everything = await call("GET", f"{keys}?includeRevoked=true", headers=acme_admin)
    assert [k["name"] for k in everything.body["keys"]] == ["acme ops", "app"]


async def test_a_tenant_admin_manages_only_its_tenant_and_never_grants_admin(gw: Gateway) -> None:
    keys = f"{gw.base}/api/ai/keys"
    acme = bearer(
        (await call("POST", keys, {"role": "tenant_admin", "tenant": "acme"}, gw.admin)).body["key"]
    )
    globex = await call("POST", keys, {"role": "viewer", "tenant": "globex"}, gw.admin)
    assert globex.status == 201

    denied = await call("POST", keys, {"role": "admin", "name": "escalate"}, acme)
    assert denied.status == 403 and "admin" in denied.body["error"]["message"]
    assert (await call("POST", keys, {"role": "user", "tenant": "globex"}, acme)).status == 404
    assert (await call("DELETE", f"{keys}/{globex.body['id']}", headers=acme)).status == 404
    assert (await call("GET", f"{keys}?tenant=globex", headers=acme)).status == 404
    assert [k["tenant"] for k in (await call("GET", keys, headers=acme)).body["keys"]] == ["acme"]
    viewer = bearer(globex.body["key"])
    assert (await call("GET", keys, headers=viewer)).status == 403
    assert (await call("POST", keys, {"role": "viewer"}, viewer)).status == 403
    # The admin acts for any tenant when it names it.
    as_admin = await call("GET", f"{keys}?tenant=globex", headers=gw.admin)
    assert [k["id"] for k in as_admin.body["keys"]] == [globex.body["id"]]
    assert (await call("DELETE", f"{keys}/{globex.body['id']}?tenant=globex", headers=gw.admin)).status == 200


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"name": "no role"}, "role"),
        ({"role": "overlord"}, "role"),
        ({"role": "user", "expiresAt": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"role": "user", "expiresAt": "2030-01-01T00:00:00"}, "expires_at"),
        ({"role": "user", "expiresAt": "next week"}, "expires_at"),
        ({"role": "user", "colour": "blue"}, "colour"),
        ({"role": "user", "name": 7}, "name"),
    ],
)
async def test_invalid_keys_are_400(gw: Gateway, body: dict[str, object], param: str) -> None:
    answer = await call("POST", f"{gw.base}/api/ai/keys", body, gw.admin)
    assert answer.status == 400, answer.body
    assert answer.body["error"]["param"] == param


async def test_an_expiring_key_carries_its_expiry(gw: Gateway) -> None:
    made = await call(
        "POST", f"{gw.base}/api/ai/keys", {"role": "user", "expiresAt": "2999-01-01T00:00:00Z"}, gw.admin
    )
    assert made.status == 201 and made.body["expires_at"].startswith("2999-01-01T00:00:00")


async def test_per_key_limits_and_budgets_apply_to_that_key_only(gw: Gateway) -> None:
    keys = f"{gw.base}/api/ai/keys"
    acme = bearer(
        (await call("POST", keys, {"role": "tenant_admin", "tenant": "acme"}, gw.admin)).body["key"]
    )
    app = (await call("POST", keys, {"role": "user", "name": "app"}, acme)).body
    other = (await call("POST", keys, {"role": "user", "name": "other"}, acme)).body
    globex = (await call("POST", keys, {"role": "user", "tenant": "globex"}, gw.admin)).body

    url = f"{gw.base}/api/ai/rate-limits"
    limit = {"scope": "key", "target": app["id"], "limits": {"requestsPerMinute": 1}}
    assert (await call("POST", url, limit, acme)).status == 200
    assert (await call("POST", url, {**limit, "target": globex["id"]}, acme)).status == 404
    assert (await call("POST", url, {**limit, "target": "no-such-key"}, acme)).status == 404
    first = await call("POST", f"{gw.base}/v1/chat/completions", CHAT, bearer(app["key"]))
    assert first.status == 200
    second = await call("POST", f"{gw.base}/v1/chat/completions", CHAT, bearer(app["key"]))
    assert second.status == 429 and second.headers["x-ratelimit-limit-requests"] == "1"
    assert (await call("POST", f"{gw.base}/v1/chat/completions", CHAT, bearer(other["key"]))).status == 200
    listed = await call("GET", url, headers=acme)
    assert [(x["scope"], x["target"]) for x in listed.body["limits"]] == [("key", app["id"])]

    budget = {"keyId": other["id"], "daily": 0.0, "enforceHardLimit": True}
    made = await call("POST", f"{gw.base}/api/ai/budgets", budget, acme)
    assert made.status == 200 and made.body["key_id"] == other["id"]
    assert (
        await call("POST", f"{gw.base}/api/ai/budgets", {**budget, "keyId": globex["id"]}, acme)
    ).status == 404
    broke = await call("POST", f"{gw.base}/v1/chat/completions", CHAT, bearer(other["key"]))
    assert broke.status == 402 and broke.body["error"]["code"] == "budget_exceeded"
    status = await call("GET", f"{gw.base}/api/ai/budgets/acme?keyId={other['id']}", headers=acme)
    assert status.status == 200 and status.body["key_id"] == other["id"]


async def test_without_a_database_key_routes_say_keys_need_storage() -> None:
    orch = Orchestrator()
    try:
        async with serve(create_app(orch, authenticator=authenticator())) as base:
            for method, path, body in (
                ("POST", "/api/ai/keys", {"role": "user"}),
                ("GET", "/api/ai/keys", None),
                ("DELETE", "/api/ai/keys/abc", None),
            ):
                answer = await call(method, base + path, body)
                assert answer.status == 503, (method, path)
                assert "need storage" in answer.body["error"]["message"]
                assert answer.body["error"]["code"] == "key_storage_unavailable"
    finally:
        await orch.aclose()
