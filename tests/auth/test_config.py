from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from pydantic import ValidationError

from podium.auth import AuthSettings, JwtAuthenticator, JwtSettings
from podium.errors import ConfigError
from tests.auth.jwt_keys import EC_KEY, RSA_KEY, SECRET, write_pem


def test_defaults_enable_auth_with_api_keys_only() -> None:
    settings = AuthSettings()
    assert settings.enabled and settings.jwt is None and settings.key_refresh_interval == 5.0
    assert AuthSettings.model_validate({"keyRefreshInterval": 1, "jwt": {"secret": SECRET}}).jwt is not None


@pytest.mark.parametrize(
    ("jwt", "message"),
    [
        ({}, "set exactly one of secret, public_key_file or jwks_file \\(found none\\)"),
        ({"secret": SECRET, "jwks_file": "k.json"}, "found secret and jwks_file"),
        ({"secret": "short"}, "at least 32 bytes"),
        ({"secret": "s" * 40, "algorithms": ["HS512"]}, "too short for HS512: HS512 needs 64"),
        ({"public_key_file": "k.pem", "algorithms": ["HS256"]}, "HS256 cannot be used with public_key_file"),
        ({"secret": SECRET, "algorithms": ["RS256"]}, "RS256 cannot be used with secret"),
        ({"secret": SECRET, "algorithms": ["none"]}, "'none' is not supported"),
        ({"secret": SECRET, "algorithms": []}, "at least one algorithm"),
        ({"secret": SECRET, "leeway": -1}, "greater than or equal to 0"),
        ({"secret": SECRET, "audiences": "x"}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_jwt_settings_say_what_to_fix(jwt: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        AuthSettings.model_validate({"jwt": jwt})


def test_unknown_auth_keys_are_refused() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        AuthSettings.model_validate({"enable": False})
    with pytest.raises(ValidationError, match="greater than 0"):
        AuthSettings(key_refresh_interval=0)


def test_unreadable_or_wrong_key_files_fail_at_start(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"auth.jwt.public_key_file: cannot read .*missing.pem.*fix the path"
    ):
        JwtAuthenticator(JwtSettings(public_key_file=tmp_path / "missing.pem"))

    private = tmp_path / "private.pem"
    private.write_bytes(
        RSA_KEY.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    with pytest.raises(ConfigError, match="holds a private key; give the public key"):
        JwtAuthenticator(JwtSettings(public_key_file=private))

    garbage = tmp_path / "garbage.pem"
    garbage.write_text("hello")
    with pytest.raises(ConfigError, match="is not a PEM public key"):
        JwtAuthenticator(JwtSettings(public_key_file=garbage))

    ec_pem = write_pem(tmp_path / "ec.pem", EC_KEY)
    with pytest.raises(ConfigError, match=r"excludes every algorithm .* \(ES256\)"):
        JwtAuthenticator(JwtSettings(public_key_file=ec_pem, algorithms=("RS256",)))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "is not JSON"),
        (json.dumps({"keys": []}), "must be a JSON Web Key Set"),
        (json.dumps([1]), "must be a JSON Web Key Set"),
        (json.dumps({"keys": [{"kty": "RSA", "n": "AQAB"}]}), "key 0 of .* is not usable"),
        (json.dumps({"keys": [{"kty": "oct", "k": "c2hvcnQ"}]}), "too short for HS256"),
        (json.dumps({"keys": [{"kty": "oct", "k": "x" * 60, "use": "enc"}]}), "holds no signature key"),
    ],
)
def test_invalid_jwks_files_fail_at_start(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=f"auth.jwt.jwks_file: .*{message}"):
        JwtAuthenticator(JwtSettings(jwks_file=path))
