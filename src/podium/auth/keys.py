"""API key authentication without database I/O on the request path.

Every key (hash, tenant, role, expiry, revocation) is held in memory, indexed by the key's SHA-256
hash. The index is loaded by :meth:`ApiKeyAuthenticator.start`, reloaded every ``refresh_interval``
seconds (keys created or revoked by ``podium keys`` or another replica take effect within that time),
and updated at once by :meth:`~ApiKeyAuthenticator.create` and :meth:`~ApiKeyAuthenticator.revoke`.
While the database is unreachable the last index keeps serving. ``last_used_at`` is moved forward by
``KeyUsage`` records handed to the :class:`~podium.storage.RecordWriter`, at most once per key per
``usage_interval`` seconds.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime

from podium.auth._headers import api_key_from_headers
from podium.auth.principal import ROLES, Principal
from podium.errors import AuthError, ConfigError, RequestError
from podium.storage.api_keys import KEY_PREFIX, ApiKey, ApiKeys, NewApiKey, hash_key
from podium.storage.records import KeyUsage, utcnow
from podium.storage.writer import RecordWriter

logger = logging.getLogger(__name__)

_CREATE_HINT = "create one with `podium keys create`"


class ApiKeyAuthenticator:
    """Authenticates ``Authorization: Bearer pdm-...`` or ``x-api-key: pdm-...`` from memory.

    Use it as ``async with ApiKeyAuthenticator(keys) as auth:`` or call :meth:`start` and
    :meth:`aclose`.

    Args:
        keys: Key storage (the database).
        writer: Where ``last_used_at`` updates go; None records no usage.
        refresh_interval: Seconds between reloads of the index from the database.
        usage_interval: Seconds between two ``last_used_at`` updates of the same key.

    Raises:
        ConfigError: ``refresh_interval`` is not positive or ``usage_interval`` is negative.
    """

    def __init__(
        self,
        keys: ApiKeys,
        *,
        writer: RecordWriter | None = None,
        refresh_interval: float = 5.0,
        usage_interval: float = 60.0,
    ) -> None:
        if refresh_interval <= 0 or usage_interval < 0:
            raise ConfigError("ApiKeyAuthenticator: refresh_interval must be > 0 and usage_interval >= 0")
        self.keys = keys
        self._writer = writer
        self._refresh_interval = refresh_interval
        self._usage_interval = usage_interval
        self._by_hash: dict[str, ApiKey] = {}
        self._hash_by_id: dict[str, str] = {}
        self._last_usage: dict[str, float] = {}
        # Serialises reloads with create/revoke, so a reload that read the table just before a local
        # change cannot overwrite that change (a revoked key must not come back to life).
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._loaded = False
        self._refresh_failing = False

    async def start(self) -> None:
        """Load every key, then keep reloading in the background.

        Raises:
            sqlalchemy.exc.SQLAlchemyError: the first load failed (the database is unreachable).
        """
        await self.refresh()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="podium-api-key-refresh")

    async def aclose(self) -> None:
        """Stop reloading the index."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def __aenter__(self) -> ApiKeyAuthenticator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def refresh(self) -> None:
        """Reload the index from the database now."""
        async with self._lock:
            by_hash = await self.keys.hashed()
            self._by_hash = by_hash
            self._hash_by_id = {key.id: digest for digest, key in by_hash.items()}
            self._loaded = True

    async def authenticate(self, headers: Mapping[str, str]) -> Principal:
        """Authenticate a request by the API key in its headers (lower-case names).

        Raises:
            AuthError: no key in the headers, or the key is unknown, revoked or expired (401).
        """
        plaintext = api_key_from_headers(headers)
        if plaintext is None:
            raise AuthError(
                f"missing API key: send `Authorization: Bearer {KEY_PREFIX}...` or "
                f"`x-api-key: {KEY_PREFIX}...`; {_CREATE_HINT}"
            )
        return self.verify(plaintext)

    def verify(self, plaintext: str) -> Principal:
        """The principal of a key, from memory (no I/O).

        Raises:
            AuthError: the key is unknown, revoked or expired (401).
        """
        if not self._loaded:
            raise RuntimeError("ApiKeyAuthenticator is not started: call `await authenticator.start()`")
        key = self._by_hash.get(hash_key(plaintext))
        if key is None:
            raise AuthError(f"invalid API key: check the key, or {_CREATE_HINT}")
        if key.revoked_at is not None:
            raise AuthError(
                f"API key {key.prefix}... was revoked at {_when(key.revoked_at)}: use another key, or "
                f"{_CREATE_HINT}",
                code="revoked_api_key",
            )
        if key.expires_at is not None and utcnow() >= key.expires_at:
            raise AuthError(
                f"API key {key.prefix}... expired at {_when(key.expires_at)}: {_CREATE_HINT}",
                code="expired_api_key",
            )
        if key.role not in ROLES:
            raise AuthError(
                f"API key {key.prefix}... has the unknown role {key.role!r}: {_CREATE_HINT} with one of "
                f"{', '.join(ROLES)}"
            )
        self._record_usage(key.id)
        return Principal(subject=key.id, tenant=key.tenant, role=key.role, method="api_key", key_id=key.id)

    async def create(
        self, tenant: str, role: str, name: str = "", expires_at: datetime | None = None
    ) -> NewApiKey:
        """Create a key; it authenticates at once (here) and after the next reload (elsewhere).

        Args:
            tenant: The tenant the key acts for.
            role: One of ``admin``, ``tenant_admin``, ``user``, ``viewer``.
            name: A human name for it.
            expires_at: When it stops working (timezone-aware, in the future); None for never.

        Returns:
            The key with its plaintext, which exists only in this object: show it once.

        Raises:
            RequestError: empty tenant, unknown role, or an expiry that is naive or not in the future (400).
        """
        validate_new_key(tenant, role, expires_at)
        async with self._lock:
            new = await self.keys.create(tenant=tenant, role=role, name=name, expires_at=expires_at)
            digest = hash_key(new.plaintext)
            self._by_hash[digest] = new.key
            self._hash_by_id[new.key.id] = digest
        return new

    async def list(
        self, tenant: str | None = None, *, include_revoked: bool = False
    ) -> builtins.list[ApiKey]:
        """Keys of ``tenant`` (all tenants when None), oldest first, read from the database."""
        return await self.keys.list_keys(tenant=tenant, include_revoked=include_revoked)

    async def revoke(self, key_id: str, tenant: str | None = None) -> ApiKey:
        """Revoke a key; it stops authenticating here at once, elsewhere after the next reload.

        Args:
            key_id: The key's id.
            tenant: Only revoke it if it belongs to this tenant (None: any tenant).

        Raises:
            NotFound: no such key (in ``tenant``) (404).
        """
        async with self._lock:
            key = await self.keys.revoke(key_id, tenant=tenant)
            digest = self._hash_by_id.get(key.id)
            if digest is not None:
                self._by_hash[digest] = key
        return key

    def _record_usage(self, key_id: str) -> None:
        if self._writer is None:
            return
        now = time.monotonic()
        last = self._last_usage.get(key_id)
        if last is not None and now - last < self._usage_interval:
            return
        self._last_usage[key_id] = now
        self._writer.submit(KeyUsage(key_id=key_id))

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_interval)
            try:
                await self.refresh()
            except Exception as exc:
                # Keep serving the last index: keys keep working through a database outage; only
                # changes made elsewhere wait until it is reachable again.
                if not self._refresh_failing:
                    logger.warning(
                        "API keys: reloading from %s failed (%s: %s); serving the last loaded keys",
                        self.keys.db.display_url,
                        type(exc).__name__,
                        str(exc).splitlines()[0] if str(exc) else "",
                    )
                self._refresh_failing = True
            else:
                if self._refresh_failing:
                    logger.info("API keys: reloading from %s works again", self.keys.db.display_url)
                self._refresh_failing = False


def validate_new_key(tenant: str, role: str, expires_at: datetime | None) -> None:
    """Check what a new key is made of.

    Raises:
        RequestError: empty tenant, unknown role, or an expiry that is naive or not in the future (400).
    """
    if not tenant.strip():
        raise RequestError("tenant must not be empty", param="tenant")
    if role not in ROLES:
        raise RequestError(f"unknown role {role!r}: use one of {', '.join(ROLES)}", param="role")
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise RequestError(
                "expires_at must carry a timezone (e.g. 2030-01-01T00:00:00Z)", param="expires_at"
            )
        if expires_at <= utcnow():
            raise RequestError("expires_at must be in the future", param="expires_at")


def _when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
