"""Rate limits under ``/api/ai/rate-limits``: status, set, reset (the seed's REST API).

A limit has a ``scope`` and a ``target``: the ``tenant`` itself, one of its ``provider`` names, or one
of its API ``key`` ids. A ``tenant_admin`` may only limit its own tenant, its own providers and its own
keys (anything else is 404); an admin may limit anything. Provider limits are stored as
``tenant/provider``, so they never touch another tenant's provider of the same name; only an admin may
set a bare provider name, which limits that name in every tenant. ``DELETE /rate-limits/{provider}/{tenant}``
refills the buckets (and frees the concurrency slots) of the provider and of the tenant, so the tenant's
requests to that provider are admitted again at once; the configured limits stay.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from podium.auth.principal import Principal
from podium.auth.rbac import authorize
from podium.errors import NotFound, RequestError
from podium.limits.config import SCOPES
from podium.limits.limiter import LimitStatus
from podium.server.deps import access, body_access, state
from podium.server.http import JSONBytes
from podium.server.routes.keys import KeyStorageMissing, key_store, owned_key

_FIELDS = frozenset({"scope", "target", "limits"})


async def _tenant_keys(request: Request, tenant: str) -> set[str]:
    try:
        store = key_store(request)
    except KeyStorageMissing:
        return set()
    return {key.id for key in await store.list(tenant, include_revoked=True)}


async def _statuses(request: Request, wanted: set[tuple[str, str]]) -> list[LimitStatus]:
    orch = state(request).orchestrator
    return [
        await orch.get_rate_limit_status(target, scope)
        for scope, target, _ in orch.governance.limiter.configured()
        if (scope, target) in wanted
    ]


async def rate_limit_status(request: Request) -> Response:
    """``GET /api/ai/rate-limits``: limits of the tenant, its providers and keys, with live levels."""
    _, tenant = await access(request, "limits.read")
    orch = state(request).orchestrator
    names = [p.name for p in orch.list_providers(tenant)]
    wanted = {("tenant", tenant)} | {("provider", f"{tenant}/{n}") for n in names}
    wanted |= {("provider", n) for n in names}  # an operator's limit on that name in every tenant
    if any(scope == "key" for scope, _, _ in orch.governance.limiter.configured()):
        wanted |= {("key", key_id) for key_id in await _tenant_keys(request, tenant)}
    return JSONBytes({"tenant": tenant, "limits": await _statuses(request, wanted)})


async def _check_target(request: Request, who: Principal, tenant: str, scope: str, target: str) -> str:
    """Refuse another tenant's target (404); return the target to store (provider names qualified)."""
    if scope == "provider":
        owner, sep, name = target.rpartition("/")
        if not sep:
            if who.role == "admin" and "tenant" not in request.query_params:
                return target  # an operator's limit on this name in every tenant
            owner, name = tenant, target
        if who.role != "admin" and owner != tenant:
            raise NotFound(f"tenant {tenant!r} has no provider named {target!r}")
        state(request).orchestrator.get_provider(name, owner)  # NotFound for another tenant's
        return f"{owner}/{name}"
    if who.role == "admin":
        return target
    if scope == "tenant" and target != tenant:
        raise NotFound(f"no tenant {target!r} for tenant {tenant!r}")
    if scope == "key":
        await owned_key(request, who, tenant, target)
    return target


async def set_rate_limit(request: Request) -> Response:
    """``POST /api/ai/rate-limits``: ``{"target", "scope", "limits"}`` sets (replaces) a target's limits."""
    who, tenant, body = await body_access(request, "limits.write")
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise RequestError(
            f"unknown field(s) {', '.join(unknown)}; send target, scope and limits", param=unknown[0]
        )
    scope = body.get("scope", "tenant")
    if scope not in SCOPES:
        raise RequestError(f"scope must be one of {', '.join(SCOPES)}, not {scope!r}", param="scope")
    target = body.get("target", tenant if scope == "tenant" else None)
    if not isinstance(target, str) or not target:
        raise RequestError(
            f"target is required: the {'provider name' if scope == 'provider' else 'API key id'}",
            param="target",
        )
    limits = body.get("limits")
    if not isinstance(limits, dict):
        raise RequestError(
            'limits must be an object, e.g. {"requestsPerMinute": 600, "tokensPerSecond": 2000}',
            param="limits",
        )
    target = await _check_target(request, who, tenant, scope, target)
    orch = state(request).orchestrator
    orch.set_rate_limit(target, limits, scope)
    return JSONBytes(await orch.get_rate_limit_status(target, scope))


async def reset_rate_limit(request: Request) -> Response:
    """``DELETE /api/ai/rate-limits/{provider}/{tenant}``: refill the provider's and the tenant's buckets."""
    who, _ = await access(request, "limits.write")
    tenant, provider = request.path_params["tenant"], request.path_params["provider"]
    authorize(who, "limits.write", tenant)
    orch = state(request).orchestrator
    orch.get_provider(provider, tenant)  # 404 unless the tenant has this provider
    await orch.reset_rate_limit(f"{tenant}/{provider}", "provider")
    await orch.reset_rate_limit(tenant, "tenant")
    limits = await _statuses(request, {("provider", f"{tenant}/{provider}"), ("tenant", tenant)})
    return JSONBytes({"tenant": tenant, "provider": provider, "limits": limits})


routes = [
    Route("/rate-limits", rate_limit_status, methods=["GET"]),
    Route("/rate-limits", set_rate_limit, methods=["POST"]),
    Route("/rate-limits/{provider}/{tenant}", reset_rate_limit, methods=["DELETE"]),
]
