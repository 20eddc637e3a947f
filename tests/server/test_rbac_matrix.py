"""Every role x every endpoint x own/other tenant: allowed, or 401/403/404 exactly as rbac says."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from podium.auth import ApiKeyAuthenticator
from podium.auth.principal import ROLES, Permission, Role
from podium.auth.rbac import ROLE_PERMISSIONS
from podium.orchestrator import Orchestrator
from podium.server import create_app
from podium.storage import ApiKeys, Database, migrate
from podium.testing import SimulatedOpenAI
from tests.server.live import TokenAuthenticator, authenticator, serve, token

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
ENDPOINTS: list[tuple[str, str, dict[str, Any] | None, Permission]] = [
    ("POST", "/v1/chat/completions", CHAT, "generate"),
    ("POST", "/v1/chat/completions", {**CHAT, "stream": True}, "generate"),
    ("POST", "/v1/completions", {"model": "gpt-4o-mini", "prompt": "hi"}, "generate"),
    ("POST", "/v1/embeddings", {"model": "gpt-4o-mini", "input": "hi"}, "generate"),
    ("GET", "/v1/models", None, "models.read"),
    ("GET", "/v1/models/gpt-4o-mini", None, "models.read"),
    ("POST", "/v1/messages", {**CHAT, "max_tokens": 10}, "generate"),
    (
        "POST",
        "/api/ai/providers",
        {"type": "openai", "name": "new", "base_url": "http://127.0.0.1:9/v1"},
        "providers.write",
    ),
    ("GET", "/api/ai/providers", None, "providers.read"),
    ("GET", "/api/ai/providers/p", None, "providers.read"),
    ("PUT", "/api/ai/providers/p", {"priority": 5}, "providers.write"),
    ("DELETE", "/api/ai/providers/p", None, "providers.write"),
    ("POST", "/api/ai/providers/p/test", None, "providers.write"),
    ("POST", "/api/ai/chat/completions", {"messages": "hi", "maxTokens": 5}, "generate"),
    ("POST", "/api/ai/completions", {"prompt": "hi"}, "generate"),
    ("POST", "/api/ai/embeddings", {"input": ["hi"]}, "generate"),
    ("GET", "/api/ai/statistics", None, "usage.read"),
    ("GET", "/api/ai/costs", None, "usage.read"),
    ("GET", "/api/ai/costs/analytics?window=24h", None, "usage.read"),
    ("POST", "/api/ai/budgets", {"daily": 5, "enforceHardLimit": True}, "budgets.write"),
    ("GET", "/api/ai/budgets/{tenant}", None, "budgets.read"),
    ("GET", "/api/ai/rate-limits", None, "limits.read"),
    (
        "POST",
        "/api/ai/rate-limits",
        {"scope": "provider", "target": "p", "limits": {"requestsPerMinute": 100}},
        "limits.write",
    ),
    ("DELETE", "/api/ai/rate-limits/p/{tenant}", None, "limits.write"),
    ("GET", "/api/ai/health", None, "health.read"),
    ("GET", "/api/ai/health/p", None, "health.read"),
    ("GET", "/api/ai/metrics", None, "health.read"),
    ("GET", "/metrics", None, "health.read"),
    ("POST", "/api/ai/keys", {"role": "viewer", "name": "n"}, "keys.write"),
    ("GET", "/api/ai/keys", None, "keys.read"),
    ("DELETE", "/api/ai/keys/{key}", None, "keys.write"),
]
IDS = [f"{m} {p}{' stream' if b and b.get('stream') else ''}" for m, p, b, _ in ENDPOINTS]


class KeyAdminTokens(TokenAuthenticator):
    """Fixed tokens for the roles, plus key administration in a real database (as CompositeAuthenticator)."""

    def __init__(self, api_keys: ApiKeyAuthenticator) -> None:
        super().__init__(authenticator().tokens)
        self.api_keys = api_keys


@dataclass
class Gateway:
    base: str
    keys: dict[str, str]  # an API key id per tenant

    def path(self, template: str, tenant: str) -> str:
        return template.format(tenant=tenant, key=self.keys[tenant])


@pytest.fixture
async def url(tmp_path: Path) -> AsyncIterator[Gateway]:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}"
    await migrate(db_url)
    db = Database(db_url)
    async with SimulatedOpenAI("up") as up, ApiKeyAuthenticator(ApiKeys(db), refresh_interval=3600) as keys:
        orch = Orchestrator()
        ids = {}
        for tenant in ("acme", "globex"):
            await orch.create_provider(
                type="openai",
                name="p",
                tenant=tenant,
                base_url=up.base_url,
                api_key="sk-up",
                default_model="gpt-4o-mini",
            )
            orch.set_budget(tenant, monthly=100.0)
            ids[tenant] = (await keys.create(tenant, "user", "app")).key.id
        try:
            async with serve(create_app(orch, authenticator=KeyAdminTokens(keys))) as base:
                yield Gateway(base, ids)
        finally:
            await orch.aclose()
            await db.dispose()


async def call(
    gw: Gateway, method: str, path: str, body: dict[str, Any] | None, headers: dict[str, str]
) -> int:
    tenant = headers.get("x-podium-tenant", "acme")
    full = gw.base + gw.path(path, tenant)
    async with aiohttp.ClientSession() as s, s.request(method, full, json=body, headers=headers) as r:
        await r.read()
        return r.status


@pytest.mark.parametrize(("method", "path", "body", "permission"), ENDPOINTS, ids=IDS)
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("other", [False, True], ids=["own", "other"])
async def test_matrix(
    url: Gateway,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    permission: Permission,
    role: Role,
    other: bool,
) -> None:
    headers = {"authorization": f"Bearer {token(role, 'acme')}"}
    if other:
        headers["x-podium-tenant"] = "globex"
    status = await call(url, method, path, body, headers)
    if other and role != "admin":
        assert status == 404
    elif permission not in ROLE_PERMISSIONS[role]:
        assert status == 403
    else:
        assert status in (200, 201, 204), status


@pytest.mark.parametrize(("method", "path", "body", "permission"), ENDPOINTS, ids=IDS)
async def test_no_or_bad_credentials_are_401(
    url: Gateway, method: str, path: str, body: dict[str, Any] | None, permission: Permission
) -> None:
    assert await call(url, method, path, body, {}) == 401
    assert await call(url, method, path, body, {"x-api-key": "wrong"}) == 401


async def test_query_tenant_works_like_the_header_and_body_tenant_is_checked(url: Gateway) -> None:
    user = {"authorization": f"Bearer {token('tenant_admin', 'acme')}"}
    admin = {"authorization": f"Bearer {token('admin', 'acme')}"}
    assert await call(url, "GET", "/api/ai/providers/p?tenant=globex", None, user) == 404
    assert await call(url, "GET", "/api/ai/providers/p?tenant=globex", None, admin) == 200
    new = {"type": "openai", "name": "n", "base_url": "http://127.0.0.1:9/v1", "tenant": "globex"}
    assert await call(url, "POST", "/api/ai/providers", new, user) == 404
    assert await call(url, "POST", "/api/ai/providers", new, admin) == 201
    assert await call(url, "GET", "/api/ai/providers/n?tenant=globex", None, admin) == 200
    assert await call(url, "GET", "/api/ai/providers/n", None, admin) == 404  # admin's own tenant is acme
