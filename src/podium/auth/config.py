"""``auth``: how the gateway authenticates callers (API keys, JWT), as a ``config.yaml`` section.

Example::

    auth:
      enabled: true                # false: every request is an admin of tenant "default" (local use only)
      key_refresh_interval: 5      # seconds until keys created or revoked elsewhere take effect
      jwt:
        public_key_file: /etc/podium/jwt.pem   # or: secret (HS*), or: jwks_file
        issuer: https://login.example.com/
        audience: podium
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import Field, SecretStr, field_validator, model_validator

from podium._settings_sections import Section

HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
"""Algorithms verified with a shared secret."""
PUBLIC_KEY_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
"""Algorithms verified with a public key (PEM file or JWKS)."""
# RFC 7518 3.2: an HMAC key must be at least as long as the hash output.
_HMAC_MIN_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
MIN_SECRET_BYTES = _HMAC_MIN_BYTES["HS256"]


def hmac_algorithms_for(secret: bytes) -> tuple[str, ...]:
    """The HS* algorithms a secret of this length is long enough for."""
    return tuple(alg for alg, size in _HMAC_MIN_BYTES.items() if len(secret) >= size)


class JwtSettings(Section):
    """``auth.jwt``: accept JSON Web Tokens signed by your identity provider.

    Exactly one key source: ``secret`` (HS256/384/512), ``public_key_file`` (a PEM public key: RSA,
    EC or Ed25519) or ``jwks_file`` (a JSON Web Key Set; tokens name their key with ``kid``).

    Attributes:
        secret: Shared secret for HS* tokens (at least 32 bytes).
        public_key_file: PEM file with the issuer's public key.
        jwks_file: JSON file ``{"keys": [...]}`` with the issuer's public keys.
        algorithms: Algorithms accepted; default: the ones the key type implies. They must belong to the
            key type, so a token cannot pick a weaker verification (no ``none``, no HS* with a public key).
        issuer: Required ``iss`` value; None accepts any issuer.
        audience: Required ``aud`` value(s); None refuses tokens that carry an ``aud``.
        leeway: Seconds of clock skew tolerated on ``exp`` and ``nbf``.
        cache_size: Verified tokens remembered (until they expire) so repeated requests skip signature
            checks; 0 turns the cache off.
    """

    secret: SecretStr | None = None
    public_key_file: Path | None = None
    jwks_file: Path | None = None
    algorithms: tuple[str, ...] | None = None
    issuer: str | None = None
    audience: str | tuple[str, ...] | None = None
    leeway: float = Field(default=30.0, ge=0, le=600)
    cache_size: int = Field(default=10_000, ge=0)

    @field_validator("secret")
    @classmethod
    def _secret_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode("utf-8")) < MIN_SECRET_BYTES:
            raise ValueError(
                f"must be at least {MIN_SECRET_BYTES} bytes; generate one with "
                "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
            )
        return value

    @field_validator("algorithms")
    @classmethod
    def _known_algorithms(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("must name at least one algorithm, or be left out to use the key type's")
        known = HMAC_ALGORITHMS | PUBLIC_KEY_ALGORITHMS
        for alg in value:
            if alg not in known:
                raise ValueError(f"{alg!r} is not supported; use some of {', '.join(sorted(known))}")
        return value

    @model_validator(mode="after")
    def _one_key_source(self) -> Self:
        sources = [
            name for name in ("secret", "public_key_file", "jwks_file") if getattr(self, name) is not None
        ]
        if len(sources) != 1:
            found = f"found {' and '.join(sources)}" if sources else "found none"
            raise ValueError(
                f"set exactly one of secret, public_key_file or jwks_file ({found}), or remove the "
                "jwt section to accept API keys only"
            )
        if self.algorithms is not None:
            allowed = HMAC_ALGORITHMS if self.secret is not None else PUBLIC_KEY_ALGORITHMS
            wrong = [alg for alg in self.algorithms if alg not in allowed]
            if wrong:
                kind = "a shared secret" if self.secret is not None else "public keys"
                raise ValueError(
                    f"algorithms {', '.join(wrong)} cannot be used with {sources[0]}: {kind} verify "
                    f"only {', '.join(sorted(allowed))}"
                )
            if self.secret is not None:
                size = len(self.secret.get_secret_value().encode("utf-8"))
                short = [alg for alg in self.algorithms if size < _HMAC_MIN_BYTES[alg]]
                if short:
                    raise ValueError(
                        f"the secret ({size} bytes) is too short for {', '.join(short)}: "
                        + ", ".join(f"{alg} needs {_HMAC_MIN_BYTES[alg]}" for alg in short)
                    )
        return self


class AuthSettings(Section):
    """``auth``: authentication of gateway callers.

    Attributes:
        enabled: False disables authentication: every caller acts as an admin of tenant ``default``.
            Only for a gateway reachable from this machine alone.
        key_refresh_interval: Seconds between reloads of the API key index, so keys created or revoked
            by another process (``podium keys``, another replica) take effect.
        key_usage_interval: Seconds between ``last_used_at`` updates of one key (its precision).
        jwt: JSON Web Token verification; None accepts API keys only.
    """

    enabled: bool = True
    key_refresh_interval: float = Field(default=5.0, gt=0, le=3600)
    key_usage_interval: float = Field(default=60.0, ge=0)
    jwt: JwtSettings | None = None
