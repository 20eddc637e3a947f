"""Role-based access control with tenant isolation.

=============  ===============================================================
role           may
=============  ===============================================================
admin          everything, for every tenant
tenant_admin   everything for its own tenant except cross-tenant ``admin`` work
user           generate; read models, own usage, health
viewer         read-only: models, providers (masked), usage, budgets, limits, health
=============  ===============================================================
"""

from __future__ import annotations

from podium.auth.principal import Permission, Principal, Role
from podium.errors import NotFound, PermissionDenied

_READ: frozenset[Permission] = frozenset(
    {"models.read", "providers.read", "usage.read", "budgets.read", "limits.read", "health.read"}
)
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    "admin": frozenset(
        {
            *_READ,
            "generate",
            "providers.write",
            "keys.read",
            "keys.write",
            "budgets.write",
            "limits.write",
            "admin",
        }
    ),
    "tenant_admin": frozenset(
        {*_READ, "generate", "providers.write", "keys.read", "keys.write", "budgets.write", "limits.write"}
    ),
    "user": frozenset({"generate", "models.read", "usage.read", "health.read"}),
    "viewer": _READ,
}


def can(principal: Principal, permission: Permission) -> bool:
    """Whether the principal's role grants ``permission`` (tenant not considered)."""
    return permission in ROLE_PERMISSIONS[principal.role]


def authorize(principal: Principal, permission: Permission, tenant: str | None = None) -> None:
    """Allow the action or raise.

    Args:
        principal: The caller.
        permission: What the action needs.
        tenant: The tenant whose resource is acted on; None for the caller's own.

    Raises:
        NotFound: the resource belongs to another tenant (404, so its existence does not leak).
        PermissionDenied: the role does not allow the action (403).
    """
    if tenant is not None and tenant != principal.tenant and principal.role != "admin":
        raise NotFound(f"no such resource for tenant {principal.tenant!r}")
    if not can(principal, permission):
        raise PermissionDenied(
            f"role {principal.role!r} may not perform {permission!r}; ask an admin of tenant "
            f"{principal.tenant!r} for a key with a role that can"
        )
