"""``GET /openapi.json`` and ``GET /docs``: every endpoint, its body, its permission and its errors.

Request schemas are generated from the same msgspec types the routes decode with, so the document
cannot drift from what the server accepts.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from podium import __version__
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


_ANY_OBJECT = {"type": "object", "additionalProperties": True}

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
]  # fmt: skip

_ERRORS = {
    "400": "Invalid JSON, wrong types or values; the message names the parameter",
    "401": "Missing or invalid credentials",
    "403": "The caller's role lacks the permission",
    "404": "Unknown model or provider, or another tenant's resource",
    "409": "A provider of that name exists",
    "413": "Body larger than the server's limit",
    "429": "Rate limited (podium's limits or every upstream's); see Retry-After",
    "502": "Every upstream attempt failed",
    "503": "No provider available; see Retry-After",
    "504": "The upstream did not answer in time",
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
    responses: dict[str, Any] = {ep.ok: {"description": "Success"}}
    for status, text in _ERRORS.items():
        responses[status] = {"description": text, "content": {"application/json": {"schema": error}}}
    op: dict[str, Any] = {
        "summary": ep.summary,
        "tags": [ep.tag],
        "description": f"Needs permission `{ep.permission}`. Admins may act for another tenant with "
        "`?tenant=` or `x-podium-tenant`.",
        "responses": responses,
        "parameters": [
            {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
            for p in ("model", "name")
            if "{" + p + "}" in ep.path
        ],
    }
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
