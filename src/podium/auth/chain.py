"""The gateway's authenticator: API keys and JWTs behind one ``authenticate(headers)``.

Which credential a request carries decides who checks it:

- ``Authorization: Bearer <a.b.c>`` (two dots) is a JWT when ``auth.jwt`` is configured;
- any other Bearer token, and ``x-api-key``, is a podium API key (``pdm-...``).

Build it with :func:`build_authenticator`, then ``await authenticator.start()`` before serving and
``await authenticator.aclose()`` at shutdown.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from podium.auth._headers import api_key_header, bearer_token
from podium.auth.config import AuthSettings
from podium.auth.keys import ApiKeyAuthenticator
from podium.auth.principal import Principal
from podium.errors import AuthError, ConfigError
from podium.storage.api_keys import KEY_PREFIX, ApiKeys
from podium.storage.writer import RecordWriter

if TYPE_CHECKING:
    from podium.auth.jwt import JwtAuthenticator

logger = logging.getLogger(__name__)


class CompositeAuthenticator:
    """Sends each request's credential to the authenticator for its kind.

    Args:
        api_keys: API key authentication (and key administration); None when there is no database.
        jwt: JWT authentication; None when ``auth.jwt`` is not configured.

    Raises:
        ConfigError: neither is given.
    """

    def __init__(
        self, *, api_keys: ApiKeyAuthenticator | None = None, jwt: JwtAuthenticator | None = None
    ) -> None:
        if api_keys is None and jwt is None:
            raise ConfigError(
                "authentication is enabled but has nothing to check credentials with: configure "
                "storage.database_url (API keys) or auth.jwt, or set auth.enabled: false"
            )
        self.api_keys = api_keys
        self.jwt = jwt
        ways = []
        if api_keys is not None:
            ways.append(
                f"`Authorization: Bearer {KEY_PREFIX}...` or `x-api-key: {KEY_PREFIX}...` (create a key "
                "with `podium keys create`)"
            )
        if jwt is not None:
            ways.append("`Authorization: Bearer <JWT>`")
        self._missing = "missing credentials: send " + ", or ".join(ways)

    async def start(self) -> None:
        """Load the API key index and start refreshing it."""
        if self.api_keys is not None:
            await self.api_keys.start()

    async def aclose(self) -> None:
        """Stop refreshing the API key index."""
        if self.api_keys is not None:
            await self.api_keys.aclose()

    async def authenticate(self, headers: Mapping[str, str]) -> Principal:
        """Authenticate a request from its headers (lower-case names), from memory.

        Raises:
            AuthError: missing, invalid, expired or revoked credentials (401).
        """
        token = bearer_token(headers)
        if token is not None:
            if token.count(".") == 2 and not token.startswith(KEY_PREFIX):
                if self.jwt is None:
                    raise AuthError(
                        f"this gateway does not accept JWTs (auth.jwt is not configured): send a podium API "
                        f"key ({KEY_PREFIX}...)"
                    )
                return self.jwt.verify(token)
            return self._api_key(token)
        key = api_key_header(headers)
        if key is not None:
            return self._api_key(key)
        raise AuthError(self._missing)

    def _api_key(self, plaintext: str) -> Principal:
        if self.api_keys is None:
            raise AuthError("this gateway does not use API keys: send `Authorization: Bearer <JWT>`")
        return self.api_keys.verify(plaintext)


class NoAuth:
    """Authentication explicitly disabled: every request acts as an admin of tenant ``default``.

    Args:
        api_keys: Key administration, when there is a database (keys are managed, never required).
    """

    PRINCIPAL = Principal(subject="anonymous", tenant="default", role="admin", method="none")

    def __init__(self, api_keys: ApiKeyAuthenticator | None = None) -> None:
        self.api_keys = api_keys
        self.jwt: JwtAuthenticator | None = None

    async def start(self) -> None:
        """Load the API key index (only used for administration)."""
        if self.api_keys is not None:
            await self.api_keys.start()

    async def aclose(self) -> None:
        """Stop refreshing the API key index."""
        if self.api_keys is not None:
            await self.api_keys.aclose()

    async def authenticate(self, headers: Mapping[str, str]) -> Principal:
        """The admin principal of tenant ``default``, whatever the headers say."""
        return self.PRINCIPAL


def build_authenticator(
    settings: AuthSettings, api_keys: ApiKeys | None, writer: RecordWriter | None = None
) -> CompositeAuthenticator | NoAuth:
    """The authenticator ``settings`` describe (not started yet: ``await it.start()``).

    Args:
        settings: The ``auth`` section.
        api_keys: Key storage; None when the gateway runs without a database (JWT only).
        writer: Where API keys' ``last_used_at`` updates go; None records no usage.

    Raises:
        ConfigError: the JWT key file is unusable, or auth is enabled with neither a database nor JWT.
    """
    key_auth = (
        ApiKeyAuthenticator(
            api_keys,
            writer=writer,
            refresh_interval=settings.key_refresh_interval,
            usage_interval=settings.key_usage_interval,
        )
        if api_keys is not None
        else None
    )
    if not settings.enabled:
        logger.warning(
            "authentication is disabled (auth.enabled: false): every caller is an admin of tenant 'default'"
        )
        return NoAuth(key_auth)
    jwt = None
    if settings.jwt is not None:
        from podium.auth.jwt import JwtAuthenticator  # PyJWT loads only where JWTs are accepted

        jwt = JwtAuthenticator(settings.jwt)
    return CompositeAuthenticator(api_keys=key_auth, jwt=jwt)
