"""Secrets at rest: AES-256-GCM encryption, the encryption key, and telling secrets apart.

Every secret value is encrypted on its own as ``enc:v1:<key id>:<base64(nonce | ciphertext | tag)>`` with
a random 96-bit nonce. The key id (an HMAC of the key, not the key) lets podium tell "this is the wrong
key" apart from "this value was tampered with", and say so.

Where the key comes from (``Cipher.from_settings``):

- ``AI_ENCRYPTION_KEY`` holding 32 random bytes as base64 (``openssl rand -base64 32``) or hex
  (``openssl rand -hex 32``): used as the key.
- ``AI_ENCRYPTION_KEY`` holding anything else: a passphrase, stretched with scrypt (n=2**15, r=8, p=1)
  and a random 16-byte salt kept in ``encryption.salt`` beside the key file. Back the salt up with the
  configuration: the same passphrase with another salt is another key.
- No ``AI_ENCRYPTION_KEY``: a random key generated once into the key file (mode 0600), with a warning
  saying where it is. Copy its content into ``AI_ENCRYPTION_KEY`` to manage the key yourself.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr

from podium.errors import ConfigError

logger = logging.getLogger(__name__)

PREFIX = "enc:v1:"
_NONCE = 12
_AAD = b"podium-config-v1"
_SCRYPT = {"n": 2**15, "r": 8, "p": 1}
_SECRET_NAMES = frozenset({"apikey", "authorization", "password", "passwd", "secret", "token", "accesstoken"})
_SECRET_SUFFIXES = (
    "apikey",
    "authorization",
    "password",
    "secret",
    "secretkey",
    "accesstoken",
    "bearertoken",
)


def is_secret_key(key: str) -> bool:
    """Whether a setting or header named ``key`` holds a credential (``api_key``, ``Authorization``, ...)."""
    flat = re.sub(r"[^a-z0-9]", "", key.lower())
    return flat in _SECRET_NAMES or flat.endswith(_SECRET_SUFFIXES)


def mask_secret(secret: str | None) -> str | None:
    """Show enough of a secret to recognise it, never enough to use it."""
    if not secret:
        return None
    return f"{secret[:3]}...{secret[-4:]}" if len(secret) >= 16 else "****"


def is_encrypted(value: str) -> bool:
    """Whether ``value`` is in podium's encrypted format (of any version)."""
    return value.startswith("enc:")


class Cipher:
    """Encrypts and decrypts secret values with one AES-256-GCM key.

    Args:
        key: 32 bytes.
        source: Where the key came from, for error messages (never the key itself).
    """

    def __init__(self, key: bytes, *, source: str = "the encryption key") -> None:
        if len(key) != 32:
            raise ConfigError(f"the encryption key from {source} must be 32 bytes, got {len(key)}")
        self._aead = AESGCM(key)
        self.key_id = hmac.new(key, b"podium key id", hashlib.sha256).hexdigest()[:16]
        self.source = source

    def __repr__(self) -> str:
        return f"Cipher(key_id={self.key_id!r}, source={self.source!r})"

    def encrypt(self, plaintext: str) -> str:
        """Encrypt one value; the same plaintext encrypts differently every time."""
        nonce = os.urandom(_NONCE)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), _AAD)
        return f"{PREFIX}{self.key_id}:{base64.b64encode(nonce + sealed).decode()}"

    def decrypt(self, value: str, *, what: str = "a secret") -> str:
        """Decrypt a value made by ``encrypt``.

        Args:
            value: The ``enc:v1:...`` string.
            what: What the value is, for error messages (``"secret 'api_key' of provider 'gpt'"``).

        Raises:
            ConfigError: another key encrypted it, or the value is corrupt or was altered.
        """
        if not value.startswith(PREFIX):
            raise ConfigError(f"cannot decrypt {what}: unsupported format (expected {PREFIX}...)")
        key_id, _, payload = value[len(PREFIX) :].partition(":")
        if key_id != self.key_id:
            raise ConfigError(
                f"cannot decrypt {what}: AI_ENCRYPTION_KEY differs from the key these secrets were "
                f"encrypted with (their key id {key_id}, the key from {self.source} has key id "
                f"{self.key_id}). Set AI_ENCRYPTION_KEY to the original key or restore the original key file."
            )
        try:
            raw = base64.b64decode(payload, validate=True)
            return self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], _AAD).decode()
        except (binascii.Error, ValueError, InvalidTag) as exc:
            raise ConfigError(
                f"cannot decrypt {what}: the stored value is corrupt or was altered; set this secret again"
            ) from exc

    @classmethod
    def from_settings(
        cls, encryption_key: str | SecretStr | None, key_file: Path, *, salt_file: Path | None = None
    ) -> Cipher:
        """Build the cipher from ``AI_ENCRYPTION_KEY``, or from a key file generated on first use.

        Args:
            encryption_key: ``AI_ENCRYPTION_KEY``: a base64 or hex 32-byte key, or a passphrase.
            key_file: Where the generated key lives when ``encryption_key`` is not set; its folder is
                the configuration directory.
            salt_file: Salt of passphrase keys; ``encryption.salt`` beside ``key_file`` by default.

        Raises:
            ConfigError: no key is set, none can be found, and the directory already holds secrets
                encrypted with some key (generating a new key would not open them); or the key file
                is corrupt.
        """
        value = encryption_key.get_secret_value() if isinstance(encryption_key, SecretStr) else encryption_key
        value = (value or "").strip()
        directory = key_file.parent
        salt_path = salt_file or directory / "encryption.salt"
        if value:
            raw = _decode_key(value)
            if raw is not None:
                return cls(raw, source="AI_ENCRYPTION_KEY")
            if len(value) < 16:
                logger.warning(
                    "AI_ENCRYPTION_KEY is a short passphrase (%d characters); prefer a random key: "
                    "openssl rand -base64 32",
                    len(value),
                )
            salt = _read_or_create(salt_path, lambda: os.urandom(16), directory, "salt file")
            derived = hashlib.scrypt(value.encode(), salt=salt, dklen=32, maxmem=64 * 2**20, **_SCRYPT)
            return cls(derived, source=f"AI_ENCRYPTION_KEY (passphrase with salt file {salt_path})")
        if key_file.exists():
            return cls(_read_key_file(key_file), source=f"key file {key_file}")
        key = secrets.token_bytes(32)
        stored = _read_or_create(key_file, lambda: base64.b64encode(key) + b"\n", directory, "key file")
        if stored.strip() == base64.b64encode(key):
            logger.warning(
                "AI_ENCRYPTION_KEY is not set: generated a new encryption key in %s (mode 0600). "
                "Back this file up: without it the secrets stored in %s cannot be decrypted. To manage "
                "the key yourself, set AI_ENCRYPTION_KEY to the file's content.",
                key_file,
                directory,
            )
        return cls(_read_key_file(key_file), source=f"key file {key_file}")


def _decode_key(value: str) -> bytes | None:
    """The 32-byte key ``value`` spells in hex or (standard or URL-safe) base64; None for a passphrase."""
    if re.fullmatch(r"[0-9a-fA-F]{64}", value):
        return bytes.fromhex(value)
    if re.fullmatch(r"[A-Za-z0-9+/]{43}=", value):
        return base64.b64decode(value, validate=True)
    if re.fullmatch(r"[A-Za-z0-9_-]{43}=?", value):
        return base64.urlsafe_b64decode(value.rstrip("=") + "=")
    return None


def _read_key_file(path: Path) -> bytes:
    mode = path.stat().st_mode
    if mode & 0o077:
        logger.warning("key file %s can be read by other users; restrict it: chmod 600 %s", path, path)
    raw = _decode_key(path.read_text().strip())
    if raw is None:
        raise ConfigError(
            f"key file {path} does not hold a base64 32-byte key; restore it from your backup "
            "or set AI_ENCRYPTION_KEY"
        )
    return raw


def _read_or_create(path: Path, make: Callable[[], bytes], directory: Path, what: str) -> bytes:
    """Return the file's bytes, creating it (mode 0600, exclusively) when it does not exist."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    if _holds_encrypted_secrets(directory):
        raise ConfigError(
            f"the {what} {path} is missing but {directory} holds encrypted secrets: a new key would not "
            "decrypt them. Restore the file from your backup or set AI_ENCRYPTION_KEY to the original key."
        )
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = make()
    # Written in full under a temporary name, then linked into place: another process starting at the
    # same moment either wins the link (and everyone uses its file) or loses it, never reads half a key.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        if hasattr(os, "fchmod"):  # a umask cannot add bits, but make the mode explicit where possible
            os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return path.read_bytes()
    finally:
        tmp.unlink()
    return data


def _holds_encrypted_secrets(directory: Path) -> bool:
    if not directory.is_dir():
        return False
    return any(PREFIX.encode() in p.read_bytes() for p in directory.glob("*.json") if p.is_file())


__all__ = ["PREFIX", "Cipher", "is_encrypted", "is_secret_key", "mask_secret"]
