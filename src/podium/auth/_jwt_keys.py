"""The keys that verify JWTs, each pinned to the algorithms its type allows.

Pinning is what stops algorithm confusion: an RSA public key only ever verifies RS*/PS* signatures,
so a token that claims ``HS256`` and was signed with the public key's PEM as an HMAC secret fails.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from jwt import PyJWK, PyJWTError

from podium.auth.config import JwtSettings, hmac_algorithms_for
from podium.errors import AuthError, ConfigError

_RSA = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
_EC_BY_CURVE = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """A key and the only algorithms it may verify.

    Attributes:
        key: The shared secret (bytes), a public key object, or a ``PyJWK``.
        algorithms: Accepted ``alg`` header values.
    """

    key: Any
    algorithms: tuple[str, ...]


class KeyRing:
    """The verification keys of ``auth.jwt``: one key, or a JWKS indexed by ``kid``.

    Args:
        default: The key for tokens without ``kid`` (a single configured key).
        by_kid: Keys by their id (from a JWKS).
    """

    def __init__(self, default: VerificationKey | None, by_kid: dict[str, VerificationKey]) -> None:
        self._default = default
        self._by_kid = by_kid

    @classmethod
    def from_settings(cls, settings: JwtSettings) -> KeyRing:
        """Read the key (file) that the settings name.

        Raises:
            ConfigError: the file cannot be read or holds no usable key, or ``algorithms`` excludes it.
        """
        wanted = settings.algorithms
        if settings.secret is not None:
            secret = settings.secret.get_secret_value().encode("utf-8")
            algs = _pick(hmac_algorithms_for(secret), wanted, "auth.jwt.secret")
            return cls(VerificationKey(secret, algs), {})
        if settings.public_key_file is not None:
            key = _load_public_key(settings.public_key_file)
            algs = _pick(_algorithms_of(key, settings.public_key_file), wanted, "auth.jwt.public_key_file")
            return cls(VerificationKey(key, algs), {})
        assert settings.jwks_file is not None  # JwtSettings requires exactly one key source
        return _load_jwks(settings.jwks_file, wanted)

    def select(self, header: dict[str, Any]) -> VerificationKey:
        """The key that verifies a token with this (unverified) header.

        Raises:
            AuthError: the token names a key id that is not configured, or names none where one is needed.
        """
        kid = header.get("kid")
        if kid is None:
            if self._default is None:
                raise AuthError(
                    "JWT header has no `kid`: the gateway's JWKS holds several keys", code="invalid_token"
                )
            return self._default
        found = self._by_kid.get(kid) if isinstance(kid, str) else None
        if found is not None:
            return found
        if not self._by_kid and self._default is not None:
            return self._default  # a single configured key: the token's kid is informative only
        raise AuthError(f"JWT signed with unknown key id {str(kid)[:64]!r}", code="invalid_token")


def _pick(available: tuple[str, ...], wanted: tuple[str, ...] | None, where: str) -> tuple[str, ...]:
    if wanted is None:
        return available
    algs = tuple(alg for alg in wanted if alg in available)
    if not algs:
        raise ConfigError(
            f"auth.jwt.algorithms ({', '.join(wanted)}) excludes every algorithm the key of {where} can "
            f"verify ({', '.join(available)}): fix auth.jwt.algorithms or leave it out"
        )
    return algs


def _read(path: Path, where: str) -> bytes:
    try:
        return path.expanduser().read_bytes()
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {path} ({exc.strerror or exc}): fix the path") from exc


def _load_public_key(path: Path) -> Any:
    data = _read(path, "auth.jwt.public_key_file")
    try:
        return load_pem_public_key(data)
    except ValueError:
        pass
    try:
        return x509.load_pem_x509_certificate(data).public_key()
    except ValueError:
        pass
    if b"PRIVATE KEY" in data:
        raise ConfigError(
            f"auth.jwt.public_key_file: {path} holds a private key; give the public key instead "
            "(`openssl pkey -in private.pem -pubout -out public.pem`)"
        )
    raise ConfigError(
        f"auth.jwt.public_key_file: {path} is not a PEM public key or certificate "
        "(expected -----BEGIN PUBLIC KEY-----)"
    )


def _algorithms_of(key: Any, path: Path) -> tuple[str, ...]:
    if isinstance(key, rsa.RSAPublicKey):
        return _RSA
    if isinstance(key, ec.EllipticCurvePublicKey):
        alg = _EC_BY_CURVE.get(key.curve.name)
        if alg is None:
            raise ConfigError(
                f"auth.jwt.public_key_file: the curve {key.curve.name} of {path} is not supported; "
                "use P-256, P-384 or P-521"
            )
        return (alg,)
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return ("EdDSA",)
    raise ConfigError(
        f"auth.jwt.public_key_file: {path} holds a {type(key).__name__}; use an RSA, EC or Ed25519 key"
    )


def _load_jwks(path: Path, wanted: tuple[str, ...] | None) -> KeyRing:
    where = "auth.jwt.jwks_file"
    try:
        document = json.loads(_read(path, where))
    except ValueError as exc:
        raise ConfigError(f"{where}: {path} is not JSON: {exc}") from exc
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f'{where}: {path} must be a JSON Web Key Set: {{"keys": [{{...}}, ...]}}')
    keys: list[tuple[str | None, VerificationKey]] = []
    for n, entry in enumerate(entries):
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue  # encryption keys never verify signatures
        try:
            jwk = PyJWK(entry)
        except PyJWTError as exc:
            raise ConfigError(f"{where}: key {n} of {path} is not usable: {exc}") from exc
        if jwk.key_type == "oct" and jwk.algorithm_name not in hmac_algorithms_for(jwk.key):
            raise ConfigError(
                f"{where}: key {n} of {path} is too short for {jwk.algorithm_name} (RFC 7518 3.2)"
            )
        if wanted is None or jwk.algorithm_name in wanted:
            keys.append((jwk.key_id, VerificationKey(jwk, (jwk.algorithm_name,))))
    if not keys:
        restriction = f" for auth.jwt.algorithms ({', '.join(wanted)})" if wanted else ""
        raise ConfigError(f"{where}: {path} holds no signature key{restriction}")
    by_kid = {kid: key for kid, key in keys if kid is not None}
    default = keys[0][1] if len(keys) == 1 else None
    if default is None and len(by_kid) < len(keys):
        raise ConfigError(f"{where}: {path} holds several keys, so each needs a `kid`")
    return KeyRing(default, by_kid)
