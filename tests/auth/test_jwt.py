from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from podium.auth import JwtAuthenticator, JwtSettings, Principal
from podium.errors import AuthError
from tests.auth.jwt_keys import EC_KEY, RSA_KEY, SECRET, claims, forged, public_pem, token, write_pem


def bearer(tok: str) -> dict[str, str]:
    return {"authorization": f"Bearer {tok}"}


def hs(**settings: Any) -> JwtAuthenticator:
    return JwtAuthenticator(JwtSettings(secret=SECRET, **settings))


ALICE = Principal(subject="alice", tenant="acme", role="user", method="jwt")


async def test_hs256_token_gives_its_claims_principal() -> None:
    auth = hs()
    assert await auth.authenticate(bearer(token(SECRET, "HS256"))) == ALICE
    admin = token(SECRET, "HS512", sub="bob", tenant="globex", role="tenant_admin")
    assert await auth.authenticate(bearer(admin)) == Principal(
        subject="bob", tenant="globex", role="tenant_admin", method="jwt"
    )


@pytest.mark.parametrize(("key", "alg"), [(RSA_KEY, "RS256"), (RSA_KEY, "PS256"), (EC_KEY, "ES256")])
async def test_public_key_tokens_verify(tmp_path: Path, key: Any, alg: str) -> None:
    auth = JwtAuthenticator(JwtSettings(public_key_file=write_pem(tmp_path / "pub.pem", key)))
    assert await auth.authenticate(bearer(token(key, alg))) == ALICE


async def test_jwks_selects_the_key_by_kid(tmp_path: Path) -> None:
    rsa_jwk = RSAAlgorithm.to_jwk(RSA_KEY.public_key(), as_dict=True) | {"kid": "r1", "alg": "RS256"}
    ec_jwk = ECAlgorithm.to_jwk(EC_KEY.public_key(), as_dict=True) | {"kid": "e1"}
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [rsa_jwk, ec_jwk]}))
    auth = JwtAuthenticator(JwtSettings(jwks_file=path))

    assert await auth.authenticate(bearer(token(RSA_KEY, "RS256", headers={"kid": "r1"}))) == ALICE
    assert await auth.authenticate(bearer(token(EC_KEY, "ES256", headers={"kid": "e1"}))) == ALICE
    with pytest.raises(AuthError, match="unknown key id 'r2'"):
        await auth.authenticate(bearer(token(RSA_KEY, "RS256", headers={"kid": "r2"})))
    with pytest.raises(AuthError, match="no `kid`"):
        await auth.authenticate(bearer(token(RSA_KEY, "RS256")))
    with pytest.raises(AuthError, match="algorithm 'ES256' is not accepted"):  # kid r1 is an RSA key
        await auth.authenticate(bearer(token(EC_KEY, "ES256", headers={"kid": "r1"})))


AUD_ISS = {"issuer": "https://login.example.com/", "audience": "podium"}
GOOD = {"iss": "https://login.example.com/", "aud": "podium"}


@pytest.mark.parametrize(
    ("tok", "message"),
    [
        (token(SECRET, "HS256", **GOOD), None),
        (token(SECRET, "HS256", **GOOD, exp=int(time.time()) - 60), "JWT has expired"),
        (token(SECRET, "HS256", **GOOD, nbf=int(time.time()) + 600), "not valid yet"),
        (token("another-secret-" + "y" * 60, "HS256", **GOOD), "signature is invalid"),
        (
            token(SECRET, "HS256", iss=GOOD["iss"], aud="other-app"),
            "audience does not match: expected 'podium'",
        ),
        (token(SECRET, "HS256", iss="https://evil.example.com/", aud="podium"), "issuer does not match"),
        (token(SECRET, "HS256", iss=GOOD["iss"]), "required claim 'aud'"),
        (token(SECRET, "HS256", aud="podium"), "required claim 'iss'"),
        (token(SECRET, "HS256", **GOOD, sub=None), "required claim 'sub'"),
        (token(SECRET, "HS256", **GOOD, tenant=None), "required claim 'tenant'"),
        (token(SECRET, "HS256", **GOOD, role=None), "required claim 'role'"),
        (token(SECRET, "HS256", **GOOD, exp=None), "required claim 'exp'"),
        (token(SECRET, "HS256", **GOOD, role="owner"), "'role' must be one of admin, tenant_admin"),
        (token(SECRET, "HS256", **GOOD, tenant=""), "'tenant' must be a non-empty string"),
        (token(SECRET, "HS256", **GOOD, tenant=7), "'tenant' must be a non-empty string"),
        (forged({"alg": "none", "typ": "JWT"}, claims(**GOOD), None), "algorithm 'none' is not accepted"),
        ("not.a.jwt", "malformed JWT"),
    ],
)
async def test_hs256_claims_and_signature_are_checked(tok: str, message: str | None) -> None:
    auth = hs(**AUD_ISS)
    if message is None:
        assert await auth.authenticate(bearer(tok)) == ALICE
        return
    with pytest.raises(AuthError, match=message) as info:
        await auth.authenticate(bearer(tok))
    assert info.value.status == 401


async def test_an_hs256_token_signed_with_the_rsa_public_key_is_refused(tmp_path: Path) -> None:
    auth = JwtAuthenticator(JwtSettings(public_key_file=write_pem(tmp_path / "pub.pem", RSA_KEY)))
    attack = forged({"alg": "HS256", "typ": "JWT"}, claims(role="admin"), public_pem(RSA_KEY))
    with pytest.raises(AuthError, match="algorithm 'HS256' is not accepted: this gateway verifies RS256"):
        await auth.authenticate(bearer(attack))


async def test_unsigned_token_is_refused_with_public_keys_too(tmp_path: Path) -> None:
    auth = JwtAuthenticator(JwtSettings(public_key_file=write_pem(tmp_path / "pub.pem", EC_KEY)))
    with pytest.raises(AuthError, match="'none' is not accepted: this gateway verifies ES256"):
        await auth.authenticate(bearer(forged({"alg": "none"}, claims(), None)))


async def test_leeway_tolerates_small_clock_skew() -> None:
    just_expired = token(SECRET, "HS256", exp=int(time.time()) - 5)
    assert (await hs(leeway=30).authenticate(bearer(just_expired))).subject == "alice"
    with pytest.raises(AuthError, match="expired"):
        await hs(leeway=0).authenticate(bearer(just_expired))


async def test_configured_algorithms_narrow_what_is_accepted() -> None:
    auth = hs(algorithms=("HS384",))
    assert (await auth.authenticate(bearer(token(SECRET, "HS384")))).tenant == "acme"
    with pytest.raises(AuthError, match="'HS256' is not accepted: this gateway verifies HS384"):
        await auth.authenticate(bearer(token(SECRET, "HS256")))


@pytest.mark.parametrize("cache_size", [0, 100])
async def test_a_token_stops_working_when_it_expires_even_after_it_was_cached(cache_size: int) -> None:
    auth = hs(leeway=0, cache_size=cache_size)
    exp = int(time.time()) + 1
    tok = token(SECRET, "HS256", exp=exp)
    assert await auth.authenticate(bearer(tok)) == ALICE
    assert await auth.authenticate(bearer(tok)) == ALICE
    await asyncio.sleep(max(0.0, exp - time.time()) + 0.05)
    with pytest.raises(AuthError, match="expired"):
        await auth.authenticate(bearer(tok))


async def test_missing_or_other_scheme_is_refused() -> None:
    with pytest.raises(AuthError, match="missing token"):
        await hs().authenticate({})
    with pytest.raises(AuthError, match="unsupported Authorization header"):
        await hs().authenticate({"authorization": "Basic dXNlcjpwYXNz"})
