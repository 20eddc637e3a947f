"""Secrets at rest: AES-256-GCM values, where the key comes from, and what a wrong key says."""

from __future__ import annotations

import base64
import json
import logging
import os
import stat
from pathlib import Path

import pytest

from podium.config.crypto import PREFIX, Cipher, is_secret_key, mask_secret
from podium.errors import ConfigError

SECRET = "sk-test-PLAINTEXT-0123456789abcdef"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_round_trip_with_a_fresh_nonce_each_time() -> None:
    cipher = Cipher(os.urandom(32))
    first, second = cipher.encrypt(SECRET), cipher.encrypt(SECRET)
    assert first.startswith(PREFIX)
    assert SECRET not in first
    assert first != second
    assert cipher.decrypt(first) == cipher.decrypt(second) == SECRET


def test_wrong_key_is_named_as_such() -> None:
    value = Cipher(os.urandom(32)).encrypt(SECRET)
    with pytest.raises(
        ConfigError, match="AI_ENCRYPTION_KEY differs from the key these secrets were encrypted with"
    ):
        Cipher(os.urandom(32)).decrypt(value, what="secret 'api_key'")


def test_altered_value_is_refused() -> None:
    cipher = Cipher(os.urandom(32))
    value = cipher.encrypt(SECRET)
    raw = bytearray(base64.b64decode(value.rsplit(":", 1)[1]))
    raw[-1] ^= 1
    altered = value.rsplit(":", 1)[0] + ":" + base64.b64encode(bytes(raw)).decode()
    with pytest.raises(ConfigError, match="corrupt or was altered"):
        cipher.decrypt(altered)


def test_key_must_be_32_bytes() -> None:
    with pytest.raises(ConfigError, match="32 bytes"):
        Cipher(b"short")


@pytest.mark.parametrize(
    "spell",
    [base64.b64encode, base64.urlsafe_b64encode, lambda k: k.hex().encode()],
    ids=["b64", "urlsafe", "hex"],
)
def test_environment_key_in_base64_or_hex(tmp_path: Path, spell: object) -> None:
    key = os.urandom(32)
    encoded = spell(key).decode()  # type: ignore[operator]
    from_env = Cipher.from_settings(encoded, tmp_path / "encryption.key")
    assert from_env.key_id == Cipher(key).key_id
    assert not (tmp_path / "encryption.key").exists()


def test_passphrase_is_stretched_with_a_per_directory_salt(tmp_path: Path) -> None:
    a = Cipher.from_settings("correct horse battery staple", tmp_path / "a" / "encryption.key")
    again = Cipher.from_settings("correct horse battery staple", tmp_path / "a" / "encryption.key")
    elsewhere = Cipher.from_settings("correct horse battery staple", tmp_path / "b" / "encryption.key")
    assert a.key_id == again.key_id
    assert a.key_id != elsewhere.key_id
    salt = tmp_path / "a" / "encryption.salt"
    assert len(salt.read_bytes()) == 16
    assert _mode(salt) == 0o600
    assert again.decrypt(a.encrypt(SECRET)) == SECRET


def test_generated_key_file_is_private_and_announced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key_file = tmp_path / "config" / "encryption.key"
    with caplog.at_level(logging.WARNING):
        cipher = Cipher.from_settings(None, key_file)
    assert _mode(key_file) == 0o600
    assert len(base64.b64decode(key_file.read_text().strip())) == 32
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert str(key_file) in warning
    assert "Back this file up" in warning
    assert "AI_ENCRYPTION_KEY" in warning
    assert key_file.read_text().strip() not in caplog.text

    caplog.clear()
    with caplog.at_level(logging.WARNING):
        reused = Cipher.from_settings("", key_file)
    assert reused.key_id == cipher.key_id
    assert "generated" not in caplog.text
    # The file's content works as AI_ENCRYPTION_KEY, as the warning says.
    assert Cipher.from_settings(key_file.read_text(), key_file).key_id == cipher.key_id


def test_missing_key_with_encrypted_secrets_present_is_an_error_not_a_new_key(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    value = Cipher(os.urandom(32)).encrypt(SECRET)
    tenant = config / "tenant-a.json"
    tenant.write_text(json.dumps({"providers": {"p": {"type": "openai", "secrets": {"api_key": value}}}}))
    before = tenant.read_bytes()
    with pytest.raises(ConfigError, match=r"is missing but .* holds encrypted secrets"):
        Cipher.from_settings(None, config / "encryption.key")
    assert not (config / "encryption.key").exists()
    assert tenant.read_bytes() == before


def test_corrupt_key_file_is_an_error(tmp_path: Path) -> None:
    key_file = tmp_path / "encryption.key"
    key_file.write_text("not a key")
    key_file.chmod(0o600)
    with pytest.raises(ConfigError, match="does not hold a base64 32-byte key"):
        Cipher.from_settings(None, key_file)


def test_secret_names_and_masks() -> None:
    for key in [
        "api_key",
        "apiKey",
        "Authorization",
        "x-api-key",
        "x-goog-api-key",
        "client_secret",
        "password",
    ]:
        assert is_secret_key(key), key
    for key in [
        "api_key_header",
        "max_tokens",
        "auth_scheme",
        "organization",
        "base_url",
        "default_max_tokens",
    ]:
        assert not is_secret_key(key), key
    assert mask_secret(SECRET) == "sk-...cdef"
    assert mask_secret("short") == "****"
    assert mask_secret(None) is None
