"""API key administration under ``/api/ai/keys``: create (the plaintext is shown once), list, revoke.

Keys live in the database, through the authenticator's ``api_keys`` (an ``ApiKeyAuthenticator``): a key
created here authenticates at once on this replica and within the refresh interval on the others; a
revoked one stops at once here. Without a database there are no keys to manage, and these routes say so
(503). A ``tenant_admin`` manages its own tenant's keys and may hand out ``tenant_admin``, ``user`` and
``viewer`` keys, never ``admin`` ones.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from pydantic.alias_generators import to_snake
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from podium.auth.keys import ApiKeyAuthenticator
from podium.auth.principal import Principal
from podium.errors import PermissionDenied, PodiumError, RequestError
from podium.server.deps import access, body_access, state
from podium.server.http import JSONBytes

# What a tenant_admin may give out: anything but admin, which crosses tenants.
_TENANT_ADMIN_GRANTS = frozenset({"tenant_admin", "user", "viewer"})
_CREATE_FIELDS = frozenset({"role", "name", "expires_at"})


class KeyStorageMissing(PodiumError):
    """API keys were asked for, but this gateway runs without a database to keep them in."""

    status = 503
    type = "service_unavailable"
    code = "key_storage_unavailable"


def key_store(request: Request) -> ApiKeyAuthenticator:
    """The authenticator's key administration.

    Raises:
        KeyStorageMissing: the gateway has no database, so no API keys (503).
    """
    auth = state(request).authenticator
    keys = auth if isinstance(auth, ApiKeyAuthenticator) else getattr(auth, "api_keys", None)
    if not isinstance(keys, ApiKeyAuthenticator):
        raise KeyStorageMissing(
            "API keys need storage: start podium with a database (storage.database_url or DATABASE_URL) "
            "to create, list and revoke keys; this gateway authenticates without one"
        )
    return keys


async def owned_key(request: Request, who: Principal, tenant: str, key_id: str) -> None:
    """Check that ``key_id`` is a key of ``tenant`` (an admin may name any key).

    Raises:
        NotFound: it is not (404, so other tenants' keys do not leak).
        KeyStorageMissing: there is no database to look the key up in (503).
    """
    if who.role == "admin":
        return
    await key_store(request).keys.get(key_id, tenant=tenant)


def _expiry(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise RequestError("expiresAt must be an ISO 8601 date-time string", param="expires_at")
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:
        raise RequestError(
            f"expiresAt {value!r} is not an ISO 8601 date-time (e.g. 2030-01-01T00:00:00Z)",
            param="expires_at",
        ) from exc


async def create_key(request: Request) -> Response:
    """``POST /api/ai/keys``: ``{"role", "name", "expiresAt"?, "tenant"?}`` -> 201 with ``key`` shown once."""
    who, tenant, raw = await body_access(request, "keys.write")
    store = key_store(request)
    body = {to_snake(k): v for k, v in raw.items()}
    unknown = sorted(set(body) - _CREATE_FIELDS)
    if unknown:
        raise RequestError(
            f"unknown field(s) {', '.join(unknown)}; a key takes role, name, expiresAt and tenant",
            param=unknown[0],
        )
    role, name = body.get("role"), body.get("name", "")
    if not isinstance(role, str) or not role:
        raise RequestError("role is required (tenant_admin, user or viewer; admin for admins)", param="role")
    if not isinstance(name, str):
        raise RequestError("name must be a string", param="name")
    if who.role != "admin" and role not in _TENANT_ADMIN_GRANTS:
        raise PermissionDenied(
            f"role {who.role!r} may create keys with role tenant_admin, user or viewer, not {role!r}"
        )
    new = await store.create(tenant, role, name, _expiry(body.get("expires_at")))
    return JSONBytes({**msgspec.to_builtins(new.key), "key": new.plaintext}, status_code=201)


async def list_keys(request: Request) -> Response:
    """``GET /api/ai/keys``: the tenant's keys, never secrets (``?includeRevoked=true``: all)."""
    _, tenant = await access(request, "keys.read")
    flag = request.query_params.get("includeRevoked") or request.query_params.get("include_revoked")
    keys = await key_store(request).list(tenant, include_revoked=flag in ("true", "1"))
    return JSONBytes({"keys": keys})


async def revoke_key(request: Request) -> Response:
    """``DELETE /api/ai/keys/{id}``: revoke a key of the tenant (another tenant's key is 404)."""
    _, tenant = await access(request, "keys.write")
    key = await key_store(request).revoke(request.path_params["id"], tenant)
    return JSONBytes(key)


routes = [
    Route("/keys", create_key, methods=["POST"]),
    Route("/keys", list_keys, methods=["GET"]),
    Route("/keys/{id}", revoke_key, methods=["DELETE"]),
]
