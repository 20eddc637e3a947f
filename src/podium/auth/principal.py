"""Who is calling, and what each role may do: the contract between authentication and the server.

Authentication (API keys, JWT) turns request headers into a ``Principal``; the server asks
``authorize`` before acting. Other tenants' resources answer 404, never 403, so that their existence
does not leak.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, Protocol, get_args

import msgspec

Role = Literal["admin", "tenant_admin", "user", "viewer"]
ROLES: tuple[Role, ...] = get_args(Role)

Permission = Literal[
    "generate",  # chat, completions, embeddings, messages
    "models.read",
    "providers.read",
    "providers.write",
    "keys.read",
    "keys.write",
    "usage.read",  # statistics, costs, analytics, history
    "budgets.read",
    "budgets.write",
    "limits.read",
    "limits.write",
    "health.read",
    "admin",  # cross-tenant operations: audit, export/import
]

AuthMethod = Literal["api_key", "jwt", "none"]


class Principal(msgspec.Struct, frozen=True):
    """An authenticated caller.

    Attributes:
        subject: Who: the key id, or the JWT ``sub``.
        tenant: The tenant the caller belongs to (an ``admin`` may act for any tenant).
        role: What the caller may do.
        method: How the caller authenticated.
        key_id: The API key's id when authenticated by key (per-key limits and budgets use it).
    """

    subject: str
    tenant: str
    role: Role
    method: AuthMethod
    key_id: str | None = None

    @property
    def actor(self) -> str:
        """How the audit trail names this caller: ``key:<id>``, ``jwt:<sub>``, or the subject."""
        if self.method == "api_key":
            return f"key:{self.key_id or self.subject}"
        if self.method == "jwt":
            return f"jwt:{self.subject}"
        return self.subject  # "anonymous" when authentication is off


class Authenticator(Protocol):
    """Turns a request's headers into a ``Principal`` without database I/O on the request path."""

    async def authenticate(self, headers: Mapping[str, str]) -> Principal:
        """Authenticate a request from its headers (lower-case names).

        Raises:
            AuthError: missing, invalid, expired or revoked credentials (401).
        """
        ...
