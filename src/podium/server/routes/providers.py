"""Provider management under ``/api/ai/providers`` (the seed's REST API).

Bodies take the same settings as ``Orchestrator.create_provider`` (snake_case or the seed's camelCase);
answers show settings with every secret masked. Another tenant's provider is 404.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from podium.errors import RequestError
from podium.server.deps import access, body_access, state
from podium.server.http import JSONBytes


async def create_provider(request: Request) -> Response:
    """``POST /api/ai/providers``: create a provider (201), 409 if the name is taken."""
    _, tenant, body = await body_access(request, "providers.write")
    kind = body.pop("type", None)
    name = body.pop("name", None)
    if not isinstance(kind, str) or not kind:
        raise RequestError(
            "type is required (openai, anthropic, google, ollama, custom, local)", param="type"
        )
    if not isinstance(name, str) or not name:
        raise RequestError("name is required", param="name")
    info = await state(request).orchestrator.create_provider(type=kind, name=name, tenant=tenant, **body)
    return JSONBytes(info, status_code=201)


async def list_providers(request: Request) -> Response:
    """``GET /api/ai/providers``: the tenant's providers."""
    _, tenant = await access(request, "providers.read")
    return JSONBytes({"providers": state(request).orchestrator.list_providers(tenant)})


async def get_provider(request: Request) -> Response:
    """``GET /api/ai/providers/{name}``."""
    _, tenant = await access(request, "providers.read")
    return JSONBytes(state(request).orchestrator.get_provider(request.path_params["name"], tenant))


async def update_provider(request: Request) -> Response:
    """``PUT /api/ai/providers/{name}``: change some settings; the rest stay."""
    _, tenant, body = await body_access(request, "providers.write")
    if "name" in body and body.pop("name") != request.path_params["name"]:
        raise RequestError("a provider cannot be renamed; create a new one and delete this one", param="name")
    orch = state(request).orchestrator
    return JSONBytes(await orch.update_provider(request.path_params["name"], tenant, **body))


async def delete_provider(request: Request) -> Response:
    """``DELETE /api/ai/providers/{name}``: 204; in-flight requests finish first."""
    _, tenant = await access(request, "providers.write")
    await state(request).orchestrator.remove_provider(request.path_params["name"], tenant)
    return Response(status_code=204)


async def test_provider(request: Request) -> Response:
    """``POST /api/ai/providers/{name}/test``: a cheap connectivity probe (200 with ``success``)."""
    _, tenant = await access(request, "providers.write")
    return JSONBytes(await state(request).orchestrator.test_provider(request.path_params["name"], tenant))


routes = [
    Route("/providers", create_provider, methods=["POST"]),
    Route("/providers", list_providers, methods=["GET"]),
    Route("/providers/{name}", get_provider, methods=["GET"]),
    Route("/providers/{name}", update_provider, methods=["PUT"]),
    Route("/providers/{name}", delete_provider, methods=["DELETE"]),
    Route("/providers/{name}/test", test_provider, methods=["POST"]),
]
