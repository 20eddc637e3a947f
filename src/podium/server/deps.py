"""What every route needs before it acts: the caller, the tenant, and the decoded body.

These are plain functions over Starlette's ``Request`` rather than FastAPI dependencies: the hot
routes call them directly, which keeps per-request work to a few attribute lookups.
"""

from __future__ import annotations

import operator
import time
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec
from starlette.requests import ClientDisconnect, Request

from podium._actor import current_actor
from podium.auth.principal import Authenticator, Permission, Principal
from podium.auth.rbac import authorize
from podium.errors import RequestError
from podium.orchestrator import Orchestrator
from podium.server.config import DEFAULT_MAX_BODY_BYTES
from podium.server.errors import PayloadTooLarge

T = TypeVar("T")


@dataclass(slots=True)
class ServerState:
    """Everything the routes share, stored on ``app.state.podium``.

    Attributes:
        orchestrator: Serves the requests.
        authenticator: Turns headers into a principal.
        aliases: Public model names mapped to ``model`` or ``provider/model``.
        max_body_bytes: Larger request bodies are refused with 413.
    """

    orchestrator: Orchestrator
    authenticator: Authenticator
    aliases: dict[str, str] = field(default_factory=dict)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    def resolve_model(self, model: str | None) -> str | None:
        """Apply a configured alias to a requested model name."""
        if model is None:
            return None
        return self.aliases.get(model, model)


def state(request: Request) -> ServerState:
    """The server state of the app serving ``request``."""
    # Kept in the scope after the first lookup: a generation request asks four times, and each
    # lookup through Starlette's ``app.state`` is two Python-level attribute hooks.
    scope = request.scope
    st: ServerState | None = scope.get("podium.state")
    if st is None:
        st = scope["podium.state"] = request.app.state.podium
    return st


def headers(request: Request) -> dict[str, str]:
    """The request's headers by lower-case name, built once per request.

    A plain dict rather than Starlette's ``Headers``, whose every lookup lowers and encodes the name and
    scans the list (and raises, then catches, a ``KeyError`` for an absent one). A header sent several
    times reads as its first value, as ``Headers`` reads it.
    """
    scope = request.scope
    found: dict[str, str] | None = scope.get("podium.headers")
    if found is None:
        pairs = scope["headers"]
        found = {}
        if pairs:
            names, values = zip(*reversed(pairs), strict=True)  # reversed: the first of repeats wins
            found = dict(zip(map(_LATIN1, names), map(_LATIN1, values), strict=True))
        scope["podium.headers"] = found
    return found


_LATIN1 = operator.methodcaller("decode", "latin-1")  # as ASGI servers and Starlette decode headers


async def principal(request: Request) -> Principal:
    """Authenticate the request (401 on missing or bad credentials).

    The caller becomes the actor the audit trail records for what this request does (configuration
    changes, the request itself); ``HotRoutes`` scopes that to the request.
    """
    who = await state(request).authenticator.authenticate(headers(request))
    current_actor.set(who.actor)
    return who


async def access(request: Request, permission: Permission) -> tuple[Principal, str]:
    """Authenticate, authorise ``permission`` and return the caller and the tenant acted on.

    The tenant is the caller's own; an ``admin`` may act for another with ``?tenant=`` or the
    ``x-podium-tenant`` header (anyone else naming another tenant gets 404).
    """
    who = await principal(request)
    # Most requests carry no query string: skip building Starlette's QueryParams for them.
    query = request.query_params.get("tenant") if request.scope.get("query_string") else None
    asked = query or headers(request).get("x-podium-tenant")
    authorize(who, permission, asked)
    return who, asked or who.tenant


def note_upstream(request: Request, started: float) -> None:
    """Add the time since ``started`` (a ``perf_counter`` value) to the request's upstream wait."""
    add_upstream_ms(request, (time.perf_counter() - started) * 1000)


def add_upstream_ms(request: Request, ms: float) -> None:
    """Count ``ms`` as time spent waiting on the upstream (excluded from ``x-podium-overhead-ms``)."""
    timing = request.scope.get("podium.timing")
    if timing is not None:
        timing[1] += ms


async def read_body(request: Request) -> bytes:
    """Read the body, refusing (413) anything over the configured size before reading it all."""
    limit = state(request).max_body_bytes
    declared = headers(request).get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body is {declared} bytes; the limit is {limit} bytes")
    # Straight from the ASGI receive channel rather than through ``Request.stream()``: that is an
    # async generator, and every one the loop starts is registered in asyncio's weak set of them and
    # finalized after; on the hot routes that was about 2 % of a request's bytecodes. Nothing reads
    # the body a second time.
    receive = request.receive
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "http.request":
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")
                chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)  # one chunk: join returns it, no copy
        elif kind == "http.disconnect":
            raise ClientDisconnect()


def decode(body: bytes, decoder: msgspec.json.Decoder[T]) -> T:
    """Decode a JSON body into a wire type; bad JSON or wrong fields are a 400 naming the problem."""
    if not body:
        raise RequestError("request body is empty; send a JSON object")
    try:
        return decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise RequestError(f"request body is not valid JSON: {exc}") from exc
    except msgspec.ValidationError as exc:
        raise RequestError(f"invalid request: {exc}", param=_param(str(exc))) from exc


def decode_any(body: bytes) -> dict[str, Any]:
    """Decode a JSON object body into a dict (for the non-hot management routes)."""
    value = decode(body, _ANY)
    if not isinstance(value, dict):
        raise RequestError("request body must be a JSON object")
    return value


_ANY: msgspec.json.Decoder[Any] = msgspec.json.Decoder()


def _param(message: str) -> str | None:
    # msgspec names the location as "at `$.messages[0].role`"; the top-level key is the parameter.
    marker = "`$."
    start = message.find(marker)
    if start < 0:
        return None
    rest = message[start + len(marker) :]
    end = min((i for i in (rest.find(c) for c in "`[.") if i >= 0), default=len(rest))
    return rest[:end] or None


def decode_lenient(body: bytes, decoder: msgspec.json.Decoder[T], into: type[T]) -> tuple[T, dict[str, Any]]:
    """Decode a body whose unknown top-level fields are vendor extensions, not mistakes.

    The fast path is one strict decode. Only when it names an unknown field is the body decoded again
    as a dict: the known fields are validated as usual and the unknown ones returned, to be passed to
    the provider verbatim (what the SDKs send with ``extra_body``).
    """
    try:
        return decode(body, decoder), {}
    except RequestError as exc:
        if "unknown field" not in exc.message:
            raise
    raw = decode_any(body)
    known = set(getattr(into, "__struct_fields__", ()))
    ours = {k: v for k, v in raw.items() if k in known}
    theirs = {k: v for k, v in raw.items() if k not in known}
    try:
        return msgspec.convert(ours, into), theirs
    except msgspec.ValidationError as exc:
        raise RequestError(f"invalid request: {exc}", param=_param(str(exc))) from exc


async def body_access(request: Request, permission: Permission) -> tuple[Principal, str, dict[str, Any]]:
    """Access check where the body may name the tenant too (as the seed's ``tenant`` option)."""
    who, tenant = await access(request, permission)
    body = decode_any(await read_body(request))
    named = body.pop("tenant", None)
    if named is not None:
        if not isinstance(named, str) or not named:
            raise RequestError("tenant must be a non-empty string", param="tenant")
        authorize(who, permission, named)
        tenant = named
    return who, tenant, body
