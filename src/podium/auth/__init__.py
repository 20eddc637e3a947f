"""Authentication (API keys, JWT) and authorisation (roles, tenant isolation)."""

from podium.auth.chain import CompositeAuthenticator, NoAuth, build_authenticator
from podium.auth.config import AuthSettings, JwtSettings
from podium.auth.jwt import JwtAuthenticator
from podium.auth.keys import ApiKeyAuthenticator
from podium.auth.principal import ROLES, Authenticator, AuthMethod, Permission, Principal, Role
from podium.auth.rbac import ROLE_PERMISSIONS, authorize, can

__all__ = [
    "ROLES",
    "ROLE_PERMISSIONS",
    "ApiKeyAuthenticator",
    "AuthMethod",
    "AuthSettings",
    "Authenticator",
    "CompositeAuthenticator",
    "JwtAuthenticator",
    "JwtSettings",
    "NoAuth",
    "Permission",
    "Principal",
    "Role",
    "authorize",
    "build_authenticator",
    "can",
]
