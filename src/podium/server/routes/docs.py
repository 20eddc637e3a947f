"""``GET /openapi.json`` and ``GET /docs``: every endpoint, its body, its permission and its errors.

Request schemas are generated from the same msgspec types the routes decode with, so the document
cannot drift from what the server accepts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from podium import __version__
from podium.costs.budgets import Budget
from podium.limits.config import RateLimitConfig
from podium.server import anthropic_wire, openai_wire
from podium.server.http import JSONBytes
from podium.server.routes import generation


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One documented operation."""

    method: str
    path: str
    summary: str
    permission: str
    body: Any = None
    ok: str = "200"
    anthropic: bool = False
    tag: str = "OpenAI-compatible"
    errors: tuple[str, ...] | None = None  # None: every status of _ERRORS but 402
    query: tuple[tuple[str, str], ...] = ()
    public: bool = False
    produces: str = "application/json"


_ANY_OBJECT = {"type": "object", "additionalProperties": True}
_READ = ("401", "403", "404")
_WRITE = ("400", "401", "403", "404", "413")
_KEYS = ("503",)
_BUDGET_BODY = {
    **Budget.model_json_schema(by_alias=True),
    "description": "A tenant's (or one API key's) budget; snake_case names work too.",
}
_BUDGET_BODY["properties"] = {
    "tenant": {"type": "string", "description": "Default: the caller's (another: admins only)"},
    "keyId": {"type": "string", "description": "Budget this API key of the tenant, not the tenant"},
    **_BUDGET_BODY["properties"],
}
_RATE_LIMIT_BODY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["limits"],
    "properties": {
        "scope": {"enum": ["tenant", "provider", "key"], "default": "tenant"},
        "target": {"type": "string", "description": "Tenant, provider name or API key id (default: tenant)"},
        "tenant": {"type": "string", "description": "Default: the caller's (another: admins only)"},
        "limits": RateLimitConfig.model_json_schema(by_alias=True),
    },
}
_KEY_BODY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["role"],
    "properties": {
        "role": {"enum": ["admin", "tenant_admin", "user", "viewer"],
                 "description": "tenant_admins may grant tenant_admin, user, viewer"},
        "name": {"type": "string"},
        "expiresAt": {"type": "string", "format": "date-time", "description": "With a time zone"},
        "tenant": {"type": "string", "description": "Default: the caller's (another: admins only)"},
    },
}  # fmt: skip
_TENANT_Q = ("tenant", "Admins: act for this tenant (also the x-podium-tenant header)")

ENDPOINTS = [
    Endpoint("post", "/v1/chat/completions", "Chat completion (JSON or SSE stream)", "generate",
             openai_wire.ChatCompletionBody),
    Endpoint("post", "/v1/completions", "Legacy text completion", "generate", openai_wire.CompletionBody),
    Endpoint("post", "/v1/embeddings", "Embeddings (float or base64)", "generate", openai_wire.EmbeddingBody),
    Endpoint("get", "/v1/models", "Models of the tenant's providers, and aliases", "models.read"),
    Endpoint("get", "/v1/models/{model}", "One model", "models.read"),
    Endpoint("post", "/v1/messages", "Anthropic Messages (JSON or SSE stream), any provider", "generate",
             anthropic_wire.MessagesBody, anthropic=True, tag="Anthropic-compatible"),
    Endpoint("post", "/v1/messages/count_tokens", "Count input tokens (providers that can count)",
             "generate", anthropic_wire.CountTokensBody, anthropic=True, tag="Anthropic-compatible"),
    Endpoint("post", "/api/ai/providers", "Create a provider", "providers.write", _ANY_OBJECT, "201",
             tag="Providers"),
    Endpoint("get", "/api/ai/providers", "List the tenant's providers (secrets masked)", "providers.read",
             tag="Providers"),
    Endpoint("get", "/api/ai/providers/{name}", "A provider's settings (secrets masked)", "providers.read",
             tag="Providers"),
    Endpoint("put", "/api/ai/providers/{name}", "Change some settings of a provider", "providers.write",
             _ANY_OBJECT, tag="Providers"),
    Endpoint("delete", "/api/ai/providers/{name}", "Remove a provider", "providers.write", ok="204",
             tag="Providers"),
    Endpoint("post", "/api/ai/providers/{name}/test", "Probe a provider's connectivity", "providers.write",
             tag="Providers"),
    Endpoint("post", "/api/ai/chat/completions", "Chat in podium's own shapes", "generate",
             generation.ChatBody, tag="Generation"),
    Endpoint("post", "/api/ai/completions", "Text completion in podium's own shapes", "generate",
             generation.CompletionBody, tag="Generation"),
    Endpoint("post", "/api/ai/embeddings", "Embeddings in podium's own shapes", "generate",
             generation.EmbeddingBody, tag="Generation"),
    Endpoint("get", "/api/ai/statistics", "Requests, errors and latency per provider", "usage.read",
             tag="Monitoring"),
    Endpoint("get", "/api/ai/health", "Provider health summary: counts by status, and each provider",
             "health.read", tag="Monitoring", errors=_READ),
    Endpoint("get", "/api/ai/health/{name}", "One provider's status, circuit, error rate and latency",
             "health.read", tag="Monitoring", errors=_READ),
    Endpoint("get", "/api/ai/metrics", "Every podium metric as JSON (the tenant's series; admins: all)",
             "health.read", tag="Monitoring", errors=_READ),
    Endpoint("get", "/metrics", "Prometheus text exposition (send the key as a bearer token; admins "
             "without ?tenant= get every tenant's series)", "health.read", tag="Monitoring", errors=_READ,
             produces="text/plain; version=0.0.4"),
    Endpoint("get", "/healthz", "Liveness probe: 200 while the server runs (no authentication)", "none",
             tag="Monitoring", errors=(), public=True),
    Endpoint("get", "/api/ai/costs", "Cost summary: total, today, month, projection, by provider and model",
             "usage.read", tag="Costs", errors=_READ),
    Endpoint("get", "/api/ai/costs/analytics", "Spend, tokens, top models and a series over a window",
             "usage.read", tag="Costs", errors=("400", *_READ),
             query=(("window", "<n>h (hourly series, up to 168h) or <n>d (daily, up to 366d); default 7d"),)),
    Endpoint("post", "/api/ai/budgets", "Set (replace) a tenant's or API key's budget; answers its status",
             "budgets.write", _BUDGET_BODY, tag="Costs", errors=(*_WRITE, *_KEYS)),
    Endpoint("get", "/api/ai/budgets/{tenant}", "A budget's limits, spend and reservations", "budgets.read",
             tag="Costs", errors=_READ, query=(("keyId", "The budget of this API key of the tenant"),)),
    Endpoint("get", "/api/ai/rate-limits", "Limits of the tenant, its providers and keys, with live levels",
             "limits.read", tag="Rate limits", errors=_READ),
    Endpoint("post", "/api/ai/rate-limits", "Set (replace) the limits of the tenant, a provider or a key",
             "limits.write", _RATE_LIMIT_BODY, tag="Rate limits", errors=(*_WRITE, *_KEYS)),
    Endpoint("delete", "/api/ai/rate-limits/{provider}/{tenant}", "Refill the provider's and the tenant's "
             "buckets and free their slots (limits stay)", "limits.write", tag="Rate limits", errors=_READ),
    Endpoint("post", "/api/ai/keys", "Create an API key; the answer's `key` is shown only once",
             "keys.write", _KEY_BODY, "201", tag="API keys", errors=(*_WRITE, *_KEYS)),
    Endpoint("get", "/api/ai/keys", "The tenant's API keys (never their secrets)", "keys.read",
             tag="API keys", errors=(*_READ, *_KEYS),
             query=(("includeRevoked", "true: revoked keys too"),)),
    Endpoint("delete", "/api/ai/keys/{id}", "Revoke an API key (it stops authenticating at once)",
             "keys.write", tag="API keys", errors=(*_READ, *_KEYS)),
]  # fmt: skip
_GENERATION = {"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/messages",
               "/api/ai/chat/completions", "/api/ai/completions", "/api/ai/embeddings"}  # fmt: skip

_ERRORS = {
    "400": "Invalid JSON, wrong types or values; the message names the parameter",
    "401": "Missing or invalid credentials",
    "402": "A hard budget cannot cover the request's maximum cost",
    "403": "The caller's role lacks the permission",
    "404": "Unknown model or provider, or another tenant's resource",
    "409": "A provider of that name exists",
    "413": "Body larger than the server's limit",
    "429": "Rate limited (podium's limits or every upstream's); see Retry-After and x-ratelimit-*",
    "502": "Every upstream attempt failed",
    "503": "No provider available; see Retry-After",
    "504": "The upstream did not answer in time",
}
# Management routes answer 503 only when they need API keys and the gateway has no database.
_NO_KEY_STORAGE = "API keys need storage: this gateway runs without a database"
_RATE_HEADERS = {
    f"x-ratelimit-{part}-{unit}": {
        "schema": {"type": "string"},
        "description": f"The tightest {unit} limit's {part}",
    }
    for unit in ("requests", "tokens")
    for part in ("limit", "remaining", "reset")
}
_OPENAI_ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "code": {"type": "string"},
                "param": {"type": ["string", "null"]},
            },
            "required": ["message", "type", "code"],
        }
    },
}
_ANTHROPIC_ERROR = {
    "type": "object",
    "properties": {
        "type": {"const": "error"},
        "error": {
            "type": "object",
            "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
        },
    },
}


def _operation(ep: Endpoint, schemas: dict[Any, Any]) -> dict[str, Any]:
    error = {"$ref": "#/components/schemas/" + ("AnthropicError" if ep.anthropic else "Error")}
    ok: dict[str, Any] = {"description": "Success"}
    if ep.path in _GENERATION:
        ok["headers"] = _RATE_HEADERS  # present when a podium limit applies to the request
    if ep.produces != "application/json":
        ok["content"] = {ep.produces: {"schema": {"type": "string"}}}
    responses: dict[str, Any] = {ep.ok: ok}
    codes = (
        ep.errors
        if ep.errors is not None
        else tuple(c for c in _ERRORS if c != "402" or ep.path in _GENERATION)
    )
    for status in codes:
        text = _NO_KEY_STORAGE if status == "503" and ep.errors is not None else _ERRORS[status]
        responses[status] = {"description": text, "content": {"application/json": {"schema": error}}}
    params = [
        {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
        for p in re.findall(r"{(\w+)", ep.path)
    ]
    params += [
        {"name": n, "in": "query", "required": False, "description": d, "schema": {"type": "string"}}
        for n, d in (*ep.query, *(() if ep.public or "{tenant}" in ep.path else (_TENANT_Q,)))
    ]
    op: dict[str, Any] = {
        "summary": ep.summary,
        "tags": [ep.tag],
        "description": "No authentication."
        if ep.public
        else f"Needs permission `{ep.permission}`. Admins may act for another tenant with "
        "`?tenant=` or `x-podium-tenant`.",
        "responses": responses,
        "parameters": params,
    }
    if ep.public:
        op["security"] = []
    if ep.body is not None:
        schema = ep.body if isinstance(ep.body, dict) else schemas[ep.body]
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
    return op


@cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the gateway."""
    types = [ep.body for ep in ENDPOINTS if ep.body is not None and not isinstance(ep.body, dict)]
    refs, components = msgspec.json.schema_components(types, ref_template="#/components/schemas/{name}")
    by_type = dict(zip(types, refs, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for ep in ENDPOINTS:
        paths.setdefault(ep.path, {})[ep.method] = _operation(ep, by_type)
    components = {**components, "Error": _OPENAI_ERROR, "AnthropicError": _ANTHROPIC_ERROR}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "podium gateway",
            "version": __version__,
            "description": "OpenAI- and Anthropic-compatible LLM gateway, and podium's /api/ai API. "
            "Every answer carries x-request-id and x-podium-overhead-ms.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
            },
        },
        "security": [{"bearer": []}, {"apiKey": []}],
    }


async def openapi(request: Request) -> Response:
    """``GET /openapi.json``."""
    return JSONBytes(openapi_document())


_SWAGGER = """<!doctype html>
<html><head><meta charset="utf-8"><title>podium API</title>
<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui"});</script>
</body></html>"""


async def swagger(request: Request) -> Response:
    """``GET /docs``: Swagger UI over ``/openapi.json``."""
    return HTMLResponse(_SWAGGER)


routes = [
    Route("/openapi.json", openapi, methods=["GET"]),
    Route("/docs", swagger, methods=["GET"]),
]
