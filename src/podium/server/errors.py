"""One mapping from podium's error tree to HTTP answers.

OpenAI-compatible and ``/api/ai`` routes answer ``{"error": {"message", "type", "code", "param"}}``;
the Anthropic-compatible routes (``/v1/messages...``) answer Anthropic's
``{"type": "error", "error": {"type", "message"}}``. Rate limits carry ``Retry-After``, and podium's
own limits (``LimitExceeded``) also the ``x-ratelimit-*`` headers of the limit that refused.
"""

from __future__ import annotations

import logging
import math

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from podium.errors import (
    AllProvidersFailed,
    NoHealthyProviders,
    PodiumError,
    ProviderError,
    ProviderRateLimited,
    RateLimitExceeded,
    RequestError,
)
from podium.limits.limiter import LimitExceeded

log = logging.getLogger("podium.server")

_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
}

_HTTP_TYPES = {
    404: ("invalid_request_error", "not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
}


class PayloadTooLarge(RequestError):
    """The request body is larger than the server accepts."""

    status = 413
    code = "request_too_large"


class ErrorInfo(msgspec.Struct, kw_only=True):
    """What an error answer says, independent of the body shape."""

    status: int
    message: str
    type: str
    code: str
    param: str | None = None
    retry_after: float | None = None
    headers: dict[str, str] = {}


def _retry_after(exc: PodiumError) -> float | None:
    if isinstance(exc, RateLimitExceeded | ProviderRateLimited | NoHealthyProviders):
        return exc.retry_after
    return None


def describe(exc: PodiumError) -> ErrorInfo:
    """Status, type, code and Retry-After of an error.

    When every failed attempt of a request failed the same way (for example every provider answered
    429), the caller gets that status rather than a generic 502, so SDKs react as they would upstream
    (a rate-limit error honours Retry-After).
    """
    if isinstance(exc, AllProvidersFailed):
        errors = [a.error for a in exc.attempts if a.error is not None]
        if errors and len({e.status for e in errors}) == 1:
            last = errors[-1]
            waits = [w for w in (_retry_after(e) for e in errors) if w is not None]
            # Every provider over podium's own limit: report the one that frees up first.
            limited = [e for e in errors if isinstance(e, LimitExceeded)]
            soonest = min(limited, key=lambda e: e.retry_after) if len(limited) == len(errors) else None
            return ErrorInfo(
                status=last.status,
                message=exc.message,
                type=last.type,
                code=last.code,
                retry_after=min(waits) if waits else None,
                headers=soonest.headers() if soonest is not None else {},
            )
    return ErrorInfo(
        status=exc.status,
        message=exc.message,
        type=exc.type,
        code=exc.code,
        param=exc.param,
        retry_after=_retry_after(exc),
        headers=exc.headers() if isinstance(exc, LimitExceeded) else {},
    )


def is_anthropic_path(path: str) -> bool:
    """Whether the path belongs to the Anthropic-compatible API (and so to its error shape)."""
    return path.startswith("/v1/messages")


def error_body(info: ErrorInfo, anthropic: bool) -> bytes:
    """Encode the error body in the API family's shape."""
    if anthropic:
        kind = _ANTHROPIC_TYPES.get(info.status, "api_error")
        return msgspec.json.encode({"type": "error", "error": {"type": kind, "message": info.message}})
    return msgspec.json.encode(
        {"error": {"message": info.message, "type": info.type, "code": info.code, "param": info.param}}
    )


def error_response(info: ErrorInfo, anthropic: bool) -> Response:
    """A complete error answer with the right status and headers."""
    headers = {}
    if info.retry_after is not None:
        headers["retry-after"] = str(max(0, math.ceil(info.retry_after)))
    headers.update(info.headers)
    return Response(
        error_body(info, anthropic), status_code=info.status, headers=headers, media_type="application/json"
    )


async def podium_error_handler(request: Request, exc: Exception) -> Response:
    """Starlette handler for every ``PodiumError``."""
    assert isinstance(exc, PodiumError)
    if exc.status >= 500 and not isinstance(exc, ProviderError | AllProvidersFailed | NoHealthyProviders):
        log.error("request %s failed: %s", request.url.path, exc.message)
    return error_response(describe(exc), is_anthropic_path(request.url.path))


async def http_error_handler(request: Request, exc: Exception) -> Response:
    """Starlette's own HTTP errors (unknown path, wrong method) in the same body shapes."""
    assert isinstance(exc, HTTPException)
    kind, code = _HTTP_TYPES.get(exc.status_code, ("invalid_request_error", "http_error"))
    message = (
        f"no endpoint {request.method} {request.url.path}; see /docs for the API"
        if exc.status_code in (404, 405)
        else str(exc.detail)
    )
    info = ErrorInfo(status=exc.status_code, message=message, type=kind, code=code)
    response = error_response(info, is_anthropic_path(request.url.path))
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def unexpected_error_handler(request: Request, exc: Exception) -> Response:
    """A bug: log it with its traceback and answer a 500 that says so without leaking internals."""
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    info = ErrorInfo(
        status=500,
        message="internal error in podium; the server log has the details",
        type="api_error",
        code="internal_error",
    )
    return error_response(info, is_anthropic_path(request.url.path))
