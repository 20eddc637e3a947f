"""Budgets under ``/api/ai``: ``POST /budgets`` sets one, ``GET /budgets/{tenant}`` reports on it.

The body is the seed's ``setBudget`` options (camelCase or snake_case): ``daily``, ``monthly`` (USD),
``alertEmails``, ``alertWebhook``, ``enforceHardLimit``, ``thresholds``, ``timezone``, plus ``tenant``
(default: the caller's; another tenant is 404 unless the caller is an admin) and ``keyId`` to budget
one API key of the tenant instead of the whole tenant.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from podium.auth.rbac import authorize
from podium.errors import RequestError
from podium.server.deps import access, body_access, state
from podium.server.http import JSONBytes
from podium.server.routes.keys import owned_key


async def set_budget(request: Request) -> Response:
    """``POST /api/ai/budgets``: set (replace) a budget; answers its status for the current periods."""
    who, tenant, body = await body_access(request, "budgets.write")
    key_id = body.pop("keyId", None)
    key_id = body.pop("key_id", key_id)
    if key_id is not None:
        if not isinstance(key_id, str) or not key_id:
            raise RequestError("keyId must be a non-empty string (an API key id)", param="key_id")
        await owned_key(request, who, tenant, key_id)
    orch = state(request).orchestrator
    orch.set_budget(tenant, key_id=key_id, **body)
    return JSONBytes(await orch.get_budget_status(tenant, key_id))


async def get_budget(request: Request) -> Response:
    """``GET /api/ai/budgets/{tenant}``: limits, spend, reservations; ``?keyId=`` for a key's budget."""
    who, _ = await access(request, "budgets.read")
    tenant = request.path_params["tenant"]
    authorize(who, "budgets.read", tenant)
    key_id = request.query_params.get("keyId") or request.query_params.get("key_id")
    return JSONBytes(await state(request).orchestrator.get_budget_status(tenant, key_id))


routes = [
    Route("/budgets", set_budget, methods=["POST"]),
    Route("/budgets/{tenant}", get_budget, methods=["GET"]),
]
