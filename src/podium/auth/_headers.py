"""Reading credentials out of request headers (lower-case names, as ASGI servers give them)."""

from __future__ import annotations

from collections.abc import Mapping

from podium.errors import AuthError


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token of ``Authorization: Bearer <token>``; None when there is no Authorization header.

    Raises:
        AuthError: the header uses another scheme (Basic, ...) or carries no token (401).
    """
    value = headers.get("authorization")
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthError(
            "unsupported Authorization header: send `Authorization: Bearer <podium API key or JWT>`"
        )
    return token


def api_key_header(headers: Mapping[str, str]) -> str | None:
    """The value of ``x-api-key`` (as the Anthropic SDK sends it); None when absent or empty."""
    value = headers.get("x-api-key", "").strip()
    return value or None


def api_key_from_headers(headers: Mapping[str, str]) -> str | None:
    """The credential of a request that may only use API keys: the Bearer token, else ``x-api-key``.

    Raises:
        AuthError: an Authorization header that is not ``Bearer <token>`` (401).
    """
    token = bearer_token(headers)
    return token if token is not None else api_key_header(headers)
