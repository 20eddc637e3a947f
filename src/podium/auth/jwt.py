"""JWT authentication: tokens from your identity provider, verified locally (no network, no database).

A token must carry ``sub`` (who), ``tenant``, ``role`` (one of :data:`~podium.auth.ROLES`) and ``exp``;
``nbf`` is honoured when present, ``iss`` and ``aud`` are required and checked when configured. The
signature is checked with the configured secret, public key or JWKS, and only with the algorithms that
key's type allows (``alg: none`` never). Verified tokens are remembered until they expire, so a client
reusing its token costs one dictionary lookup instead of a signature check.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, cast

import jwt

from podium.auth._headers import bearer_token
from podium.auth._jwt_keys import KeyRing
from podium.auth.config import JwtSettings
from podium.auth.principal import ROLES, Principal, Role
from podium.errors import AuthError

_CODE = "invalid_token"
_REQUIRED = ("exp", "sub", "tenant", "role")


class JwtAuthenticator:
    """Authenticates ``Authorization: Bearer <JWT>``.

    Args:
        settings: The ``auth.jwt`` section; its key file is read here, once.

    Raises:
        ConfigError: the key file cannot be read or does not fit ``algorithms``.
    """

    def __init__(self, settings: JwtSettings) -> None:
        self.settings = settings
        self._keys = KeyRing.from_settings(settings)
        self._leeway = settings.leeway
        self._cache_size = settings.cache_size
        self._cache: dict[str, tuple[Principal, float]] = {}
        required = [*_REQUIRED]
        if settings.issuer is not None:
            required.append("iss")
        if settings.audience is not None:
            required.append("aud")
        self._options: Any = {"require": required}

    async def authenticate(self, headers: Mapping[str, str]) -> Principal:
        """Authenticate a request by the JWT in its ``Authorization: Bearer`` header.

        Raises:
            AuthError: no token, or the token is invalid (401).
        """
        token = bearer_token(headers)
        if token is None:
            raise AuthError("missing token: send `Authorization: Bearer <JWT>`", code=_CODE)
        return self.verify(token)

    def verify(self, token: str) -> Principal:
        """The principal a token names, after checking its signature and claims (no I/O).

        Raises:
            AuthError: malformed, badly signed, expired, not yet valid, for another issuer or audience,
                or missing a required claim, or naming an unknown role (401).
        """
        cached = self._cache.get(token)
        if cached is not None:
            principal, valid_until = cached
            if time.time() < valid_until:
                return principal
            del self._cache[token]
        claims = self._decode(token)
        principal = _principal(claims)
        if self._cache_size:
            if len(self._cache) >= self._cache_size:
                del self._cache[next(iter(self._cache))]  # the oldest entry: dicts keep insertion order
            self._cache[token] = (principal, float(claims["exp"]) + self._leeway)
        return principal

    def _decode(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthError(
                "malformed JWT: expected header.payload.signature in base64url", code=_CODE
            ) from exc
        key = self._keys.select(header)
        alg = header.get("alg")
        if alg not in key.algorithms:
            raise AuthError(
                f"JWT algorithm {str(alg)[:16]!r} is not accepted: this gateway verifies "
                f"{', '.join(key.algorithms)}",
                code=_CODE,
            )
        s = self.settings
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=list(key.algorithms),
                audience=s.audience,
                issuer=s.issuer,
                leeway=s.leeway,
                options=self._options,
            )
        except jwt.PyJWTError as exc:
            raise AuthError(self._explain(exc), code=_CODE) from exc
        return claims

    def _explain(self, exc: jwt.PyJWTError) -> str:
        s = self.settings
        if isinstance(exc, jwt.ExpiredSignatureError):
            return "JWT has expired: get a new token"
        if isinstance(exc, jwt.ImmatureSignatureError):
            return "JWT is not valid yet (nbf is in the future): check the issuer's clock"
        if isinstance(exc, jwt.MissingRequiredClaimError):
            needed = ", ".join(self._options["require"])
            return f"JWT lacks the required claim {exc.claim!r} (podium needs {needed})"
        if isinstance(exc, jwt.InvalidAudienceError):
            if s.audience is None:
                return "JWT carries an audience (aud) but auth.jwt.audience is not configured: set it"
            return f"JWT audience does not match: expected {_listed(s.audience)}"
        if isinstance(exc, jwt.InvalidIssuerError):
            return f"JWT issuer does not match: expected {s.issuer!r}"
        if isinstance(exc, jwt.InvalidSignatureError):
            return "JWT signature is invalid: the token was not signed by the configured key"
        if isinstance(exc, jwt.InvalidAlgorithmError | jwt.InvalidKeyError):
            return f"JWT algorithm is not accepted: {exc}"
        return f"invalid JWT: {exc}"


def _principal(claims: dict[str, Any]) -> Principal:
    tenant, role, sub = claims["tenant"], claims["role"], claims["sub"]
    if not isinstance(tenant, str) or not tenant:
        raise AuthError("JWT claim 'tenant' must be a non-empty string", code=_CODE)
    if role not in ROLES:
        raise AuthError(
            f"JWT claim 'role' must be one of {', '.join(ROLES)}, not {str(role)[:32]!r}", code=_CODE
        )
    return Principal(subject=str(sub), tenant=tenant, role=cast(Role, role), method="jwt")


def _listed(audience: str | tuple[str, ...]) -> str:
    return repr(audience) if isinstance(audience, str) else " or ".join(repr(a) for a in audience)
