"""Authentication (API keys, JWT) and authorisation (roles, tenant isolation)."""

from typing import TYPE_CHECKING

from podium._lazy import lazy_exports
from podium.auth.chain import CompositeAuthenticator, NoAuth, build_authenticator
from podium.auth.config import AuthSettings, JwtSettings
from podium.auth.keys import ApiKeyAuthenticator
from podium.auth.principal import ROLES, Authenticator, AuthMethod, Permission, Principal, Role
from podium.auth.rbac import ROLE_PERMISSIONS, authorize, can

if TYPE_CHECKING:
    from podium.auth.jwt import JwtAuthenticator

# PyJWT (and the key types it pulls in) load only where JWTs are configured.
__getattr__ = lazy_exports(__name__, {"JwtAuthenticator": "podium.auth.jwt"})

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
