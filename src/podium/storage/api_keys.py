"""API keys: created once in plaintext, stored only as a SHA-256 hash, verified in constant time.

A key looks like ``pdm-<43 random URL-safe characters>`` (256 bits). Only its hash and a short display
prefix (``pdm-AbCdEfGh``) are stored, so a copy of the database cannot be used to authenticate.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import bindparam, insert, or_, select, update

from podium.errors import AuthError, NotFound
from podium.storage.aio import AsyncConnection
from podium.storage.db import Database
from podium.storage.records import KeyUsage, utcnow
from podium.storage.tables import api_keys

KEY_PREFIX = "pdm-"
_DISPLAY_CHARS = 12


class ApiKey(msgspec.Struct, frozen=True, kw_only=True):
    """A stored API key: everything but the key itself.

    Attributes:
        id: The key's id (used to revoke it).
        prefix: The key's first characters, to recognise it in lists.
        tenant: The tenant the key acts for.
        role: Its role (what it may do).
        name: A human name (``ci``, ``alice laptop``).
        created_at: When it was created.
        expires_at: When it stops working; None for never.
        revoked_at: When it was revoked; None while it is not.
        last_used_at: When it last authenticated a request (updated off the request path).
    """

    id: str
    prefix: str
    tenant: str
    role: str
    name: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    def is_active(self, now: datetime | None = None) -> bool:
        """Whether the key authenticates at ``now`` (default: the current time)."""
        now = now or utcnow()
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


class NewApiKey(msgspec.Struct, frozen=True, kw_only=True):
    """A key just created: the only time its plaintext exists. Show it once, then drop it."""

    key: ApiKey
    plaintext: str

    def __repr__(self) -> str:
        return f"NewApiKey(key={self.key!r}, plaintext='{self.key.prefix}...')"


def hash_key(plaintext: str) -> str:
    """The stored form of a key: SHA-256, hex. Keys are random 256-bit values, so no salt is needed."""
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


async def touch_keys(conn: AsyncConnection, usages: Sequence[KeyUsage]) -> None:
    """Move keys' ``last_used_at`` forward inside the caller's transaction (never backwards)."""
    latest: dict[str, datetime] = {}
    for u in usages:
        latest[u.key_id] = max(latest.get(u.key_id, u.at), u.at)
    if latest:
        k = api_keys.c
        await conn.execute(
            update(api_keys)
            .where(
                k.id == bindparam("b_id"), or_(k.last_used_at.is_(None), k.last_used_at < bindparam("b_at"))
            )
            .values(last_used_at=bindparam("b_at")),
            [{"b_id": key_id, "b_at": at} for key_id, at in latest.items()],
        )


class ApiKeys:
    """Create, look up, authenticate and revoke API keys.

    Args:
        db: The database.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self,
        *,
        tenant: str,
        role: str,
        name: str,
        expires_at: datetime | None = None,
        expires_in: timedelta | None = None,
    ) -> NewApiKey:
        """Create a key and return it with its plaintext, which is not stored anywhere.

        Args:
            tenant: The tenant the key acts for.
            role: The key's role.
            name: A human name for it.
            expires_at: When it stops working.
            expires_in: Or: how long from now it works.
        """
        now = utcnow()
        if expires_in is not None:
            expires_at = now + expires_in
        plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(
            id=uuid.uuid4().hex,
            prefix=plaintext[:_DISPLAY_CHARS],
            tenant=tenant,
            role=role,
            name=name,
            created_at=now,
            expires_at=expires_at,
            revoked_at=None,
            last_used_at=None,
        )
        row: dict[str, Any] = {f: getattr(key, f) for f in ApiKey.__struct_fields__}
        row["key_hash"] = hash_key(plaintext)
        async with self.db.transaction() as conn:
            await conn.execute(insert(api_keys), [row])
        return NewApiKey(key=key, plaintext=plaintext)

    async def lookup(self, plaintext: str) -> ApiKey | None:
        """The key whose plaintext this is, whatever its state (revoked, expired); None if unknown."""
        digest = hash_key(plaintext)
        async with self.db.engine.connect() as conn:
            row = (
                (await conn.execute(select(api_keys).where(api_keys.c.key_hash == digest))).mappings().first()
            )
        # The lookup finds the row by hash; comparing again in constant time keeps the final decision
        # independent of how a database index compares strings.
        if row is None or not hmac.compare_digest(str(row["key_hash"]), digest):
            return None
        return _key(row)

    async def authenticate(self, plaintext: str, *, now: datetime | None = None) -> ApiKey:
        """The key if it is valid now.

        Raises:
            AuthError: the key is unknown, revoked or expired.
        """
        key = await self.lookup(plaintext)
        if key is None:
            raise AuthError("invalid API key: check the key, or create one with `podium keys create`")
        if key.revoked_at is not None:
            raise AuthError(f"API key {key.prefix}... was revoked: create a new one")
        if not key.is_active(now):
            raise AuthError(f"API key {key.prefix}... has expired: create a new one")
        return key

    async def get(self, key_id: str, *, tenant: str | None = None) -> ApiKey:
        """A key by id (only within ``tenant`` when given).

        Raises:
            NotFound: no such key.
        """
        query = select(api_keys).where(api_keys.c.id == key_id)
        if tenant is not None:
            query = query.where(api_keys.c.tenant == tenant)
        async with self.db.engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        if row is None:
            raise NotFound(f"API key {key_id!r} not found; list keys to see their ids")
        return _key(row)

    async def list_keys(self, *, tenant: str | None = None, include_revoked: bool = False) -> list[ApiKey]:
        """Keys, oldest first, optionally of one tenant; revoked keys only when asked for."""
        query = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
        if tenant is not None:
            query = query.where(api_keys.c.tenant == tenant)
        if not include_revoked:
            query = query.where(api_keys.c.revoked_at.is_(None))
        async with self.db.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_key(row) for row in rows]

    async def revoke(self, key_id: str, *, tenant: str | None = None) -> ApiKey:
        """Revoke a key now (revoking twice keeps the first time).

        Raises:
            NotFound: no such key (within ``tenant`` when given).
        """
        k = api_keys.c
        query = update(api_keys).where(k.id == key_id, k.revoked_at.is_(None)).values(revoked_at=utcnow())
        if tenant is not None:
            query = query.where(k.tenant == tenant)
        async with self.db.transaction() as conn:
            await conn.execute(query)
        return await self.get(key_id, tenant=tenant)

    async def hashed(self) -> dict[str, ApiKey]:
        """Every key (revoked and expired included) by the hash of its plaintext, for an in-memory index."""
        async with self.db.engine.connect() as conn:
            rows = (await conn.execute(select(api_keys))).mappings().all()
        return {str(row["key_hash"]): _key(row) for row in rows}


def _key(row: Any) -> ApiKey:
    return ApiKey(**{f: row[f] for f in ApiKey.__struct_fields__})
