from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from podium.errors import AuthError, NotFound
from podium.storage import ApiKeys, Database, KeyUsage, RecordWriter
from podium.storage.api_keys import hash_key


async def _all_stored_text(db: Database) -> bytes:
    """Every byte the database holds for podium's keys: the SQLite files, or the PostgreSQL rows."""
    if db.is_sqlite:
        path = Path(str(db.url.database))
        await db.dispose()  # checkpoints the WAL into the file (the -wal file is read too, if it stays)
        return b"".join(p.read_bytes() for p in path.parent.iterdir() if p.name.startswith(path.name))
    async with db.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM api_keys"))).all()
    return repr([tuple(r) for r in rows]).encode()


async def test_plaintext_is_returned_once_and_never_stored(db: Database) -> None:
    keys = ApiKeys(db)
    new = await keys.create(tenant="acme", role="admin", name="ci")
    assert new.plaintext.startswith("pdm-") and len(new.plaintext) >= 40
    assert new.key.prefix == new.plaintext[:12]
    assert new.plaintext not in repr(new)

    stored = await _all_stored_text(db)
    assert new.plaintext.encode() not in stored
    assert new.plaintext[12:].encode() not in stored  # not even the secret part
    assert hash_key(new.plaintext).encode() in stored
    assert new.key.prefix.encode() in stored


async def test_authenticate_lookup_and_list(db: Database) -> None:
    keys = ApiKeys(db)
    a = await keys.create(tenant="acme", role="admin", name="a")
    b = await keys.create(tenant="globex", role="user", name="b")

    assert await keys.authenticate(a.plaintext) == a.key
    assert (await keys.authenticate(b.plaintext)).tenant == "globex"
    assert await keys.lookup("pdm-not-a-key") is None
    with pytest.raises(AuthError, match="invalid API key"):
        await keys.authenticate("pdm-not-a-key")
    with pytest.raises(AuthError):
        await keys.authenticate(a.plaintext[:-1])  # one character short

    assert [k.id for k in await keys.list_keys()] == [a.key.id, b.key.id]
    assert [k.name for k in await keys.list_keys(tenant="acme")] == ["a"]
    assert await keys.get(a.key.id, tenant="acme") == a.key
    with pytest.raises(NotFound):
        await keys.get(a.key.id, tenant="globex")


async def test_revoked_key_no_longer_authenticates(db: Database) -> None:
    keys = ApiKeys(db)
    new = await keys.create(tenant="acme", role="user", name="laptop")
    with pytest.raises(NotFound):
        await keys.revoke(new.key.id, tenant="globex")  # another tenant cannot revoke it
    await keys.authenticate(new.plaintext)

    revoked = await keys.revoke(new.key.id, tenant="acme")
    assert revoked.revoked_at is not None
    with pytest.raises(AuthError, match="revoked"):
        await keys.authenticate(new.plaintext)
    again = await keys.revoke(new.key.id)
    assert again.revoked_at == revoked.revoked_at
    assert await keys.list_keys(tenant="acme") == []
    assert [k.id for k in await keys.list_keys(tenant="acme", include_revoked=True)] == [new.key.id]
    assert (await keys.lookup(new.plaintext)) == revoked


async def test_expired_key_no_longer_authenticates(db: Database) -> None:
    keys = ApiKeys(db)
    expires = datetime(2030, 1, 1, tzinfo=UTC)
    new = await keys.create(tenant="acme", role="user", name="temp", expires_at=expires)
    assert (await keys.authenticate(new.plaintext, now=expires - timedelta(seconds=1))).expires_at == expires
    with pytest.raises(AuthError, match="expired"):
        await keys.authenticate(new.plaintext, now=expires)

    short = await keys.create(tenant="acme", role="user", name="short", expires_in=timedelta(seconds=-1))
    with pytest.raises(AuthError, match="expired"):
        await keys.authenticate(short.plaintext)


async def test_key_usage_moves_last_used_forward_through_the_writer(db: Database) -> None:
    keys = ApiKeys(db)
    new = await keys.create(tenant="acme", role="user", name="k")
    t1 = datetime(2030, 1, 1, 12, tzinfo=UTC)
    async with RecordWriter(db, flush_interval=0.01) as writer:
        writer.submit(KeyUsage(key_id=new.key.id, at=t1))
        writer.submit(KeyUsage(key_id=new.key.id, at=t1 - timedelta(hours=1)))
        assert await writer.flush(timeout=30)
        assert (await keys.get(new.key.id)).last_used_at == t1
        writer.submit(KeyUsage(key_id=new.key.id, at=t1 - timedelta(days=1)))  # older: ignored
        assert await writer.flush(timeout=30)
    assert (await keys.get(new.key.id)).last_used_at == t1
