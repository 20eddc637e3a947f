from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from podium.auth import ApiKeyAuthenticator, Principal
from podium.errors import AuthError, NotFound, RequestError
from podium.storage import ApiKeys, Database, RecordWriter, migrate
from podium.storage.records import utcnow
from tests.storage import TcpProxy, fresh_postgres_database


@pytest.fixture
async def auth(db: Database) -> AsyncIterator[ApiKeyAuthenticator]:
    # A long interval: these tests decide when the index reloads.
    async with ApiKeyAuthenticator(ApiKeys(db), refresh_interval=3600) as authenticator:
        yield authenticator


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


async def eventually_authenticates(auth: ApiKeyAuthenticator, key: str) -> Principal:
    for _ in range(200):
        try:
            return await auth.authenticate(bearer(key))
        except AuthError:
            await asyncio.sleep(0.05)
    return await auth.authenticate(bearer(key))


async def test_a_created_key_authenticates_by_bearer_or_x_api_key(auth: ApiKeyAuthenticator) -> None:
    new = await auth.create("acme", "tenant_admin", "ci")
    expected = Principal(
        subject=new.key.id, tenant="acme", role="tenant_admin", method="api_key", key_id=new.key.id
    )
    assert await auth.authenticate(bearer(new.plaintext)) == expected
    assert await auth.authenticate({"authorization": f"bearer  {new.plaintext} "}) == expected
    assert await auth.authenticate({"x-api-key": new.plaintext}) == expected


async def test_unknown_or_missing_keys_are_refused_with_a_hint(auth: ApiKeyAuthenticator) -> None:
    new = await auth.create("acme", "user")
    with pytest.raises(AuthError, match=r"invalid API key.*podium keys create") as info:
        await auth.authenticate(bearer(new.plaintext[:-1]))
    assert info.value.status == 401
    with pytest.raises(AuthError, match="missing API key"):
        await auth.authenticate({})
    with pytest.raises(AuthError, match="x-api-key"):
        await auth.authenticate({"x-api-key": "  "})
    with pytest.raises(AuthError, match="unsupported Authorization header"):
        await auth.authenticate({"authorization": f"Basic {new.plaintext}"})


async def test_revoking_takes_effect_at_once_and_only_within_the_tenant(auth: ApiKeyAuthenticator) -> None:
    keep = await auth.create("acme", "user", "keep")
    gone = await auth.create("acme", "user", "gone")
    with pytest.raises(NotFound):
        await auth.revoke(gone.key.id, tenant="globex")
    await auth.authenticate(bearer(gone.plaintext))  # another tenant's admin could not revoke it

    revoked = await auth.revoke(gone.key.id, tenant="acme")
    assert revoked.revoked_at is not None
    with pytest.raises(AuthError, match=rf"{gone.key.prefix}\.\.\. was revoked") as info:
        await auth.authenticate(bearer(gone.plaintext))
    assert info.value.code == "revoked_api_key"
    await auth.authenticate(bearer(keep.plaintext))

    await auth.refresh()  # the reloaded index agrees
    with pytest.raises(AuthError, match="was revoked"):
        await auth.authenticate(bearer(gone.plaintext))
    assert [k.name for k in await auth.list("acme")] == ["keep"]
    assert [k.name for k in await auth.list("acme", include_revoked=True)] == ["keep", "gone"]
    assert await auth.list("globex") == []


async def test_expired_keys_are_refused(auth: ApiKeyAuthenticator, db: Database) -> None:
    # Stored directly: the authenticator itself refuses to create a key that is already expired.
    old = await ApiKeys(db).create(tenant="acme", role="user", name="old", expires_in=timedelta(seconds=-1))
    fresh = await auth.create("acme", "user", expires_at=utcnow() + timedelta(days=1))
    await auth.refresh()
    with pytest.raises(AuthError, match=rf"{old.key.prefix}\.\.\. expired at") as info:
        await auth.authenticate(bearer(old.plaintext))
    assert info.value.code == "expired_api_key"
    assert (await auth.authenticate(bearer(fresh.plaintext))).tenant == "acme"


async def test_invalid_new_keys_are_refused(auth: ApiKeyAuthenticator) -> None:
    with pytest.raises(
        RequestError, match="unknown role 'owner': use one of admin, tenant_admin, user, viewer"
    ):
        await auth.create("acme", "owner")
    with pytest.raises(RequestError, match="tenant must not be empty"):
        await auth.create(" ", "user")
    with pytest.raises(RequestError, match="must be in the future"):
        await auth.create("acme", "user", expires_at=utcnow() - timedelta(seconds=1))
    with pytest.raises(RequestError, match="timezone"):
        await auth.create("acme", "user", expires_at=(utcnow() + timedelta(days=1)).replace(tzinfo=None))
    assert await auth.list(include_revoked=True) == []


async def test_keys_changed_by_another_process_take_effect_after_a_refresh(
    auth: ApiKeyAuthenticator, db_url: str
) -> None:
    # Another ApiKeys on its own engine: what `podium keys create` does in another process.
    async with Database(db_url) as other_db:
        cli = ApiKeys(other_db)
        new = await cli.create(tenant="acme", role="viewer", name="from cli")
        with pytest.raises(AuthError, match="invalid API key"):
            await auth.authenticate(bearer(new.plaintext))  # no database lookup on the request path
        await auth.refresh()
        assert (await auth.authenticate(bearer(new.plaintext))).role == "viewer"

        await cli.revoke(new.key.id)
        await auth.refresh()
        with pytest.raises(AuthError, match="was revoked"):
            await auth.authenticate(bearer(new.plaintext))


async def test_the_index_reloads_periodically(db: Database, db_url: str) -> None:
    async with (
        ApiKeyAuthenticator(ApiKeys(db), refresh_interval=0.05) as auth,
        Database(db_url) as other_db,
    ):
        new = await ApiKeys(other_db).create(tenant="acme", role="user", name="later")
        assert (await eventually_authenticates(auth, new.plaintext)).key_id == new.key.id

        await ApiKeys(other_db).revoke(new.key.id)
        for _ in range(200):
            try:
                await auth.authenticate(bearer(new.plaintext))
            except AuthError:
                break
            await asyncio.sleep(0.05)
        with pytest.raises(AuthError, match="was revoked"):  # refused within 10 s, and for that reason
            await auth.authenticate(bearer(new.plaintext))


async def test_last_used_at_is_written_through_the_writer(db: Database) -> None:
    keys = ApiKeys(db)
    async with (
        RecordWriter(db, flush_interval=0.05) as writer,
        ApiKeyAuthenticator(keys, writer=writer, refresh_interval=3600, usage_interval=3600) as auth,
    ):
        new = await auth.create("acme", "user")
        assert (await keys.get(new.key.id)).last_used_at is None
        before = utcnow()
        for _ in range(3):
            await auth.authenticate(bearer(new.plaintext))
        assert await writer.flush(timeout=10)
        used = (await keys.get(new.key.id)).last_used_at
        assert used is not None and before <= used <= utcnow()
        assert writer.stats().written == 1  # one update per key per usage_interval, not one per request


async def test_keys_keep_working_while_the_database_is_down(caplog: pytest.LogCaptureFixture) -> None:
    async with fresh_postgres_database() as url:
        setup = Database(url)
        await migrate(setup)
        new = await ApiKeys(setup).create(tenant="acme", role="user", name="k")
        await setup.dispose()

        proxy = TcpProxy("127.0.0.1", setup.url.port or 5432)
        await proxy.start()
        db = Database(setup.url.set(host="127.0.0.1", port=proxy.port), connect_timeout=2)
        try:
            async with ApiKeyAuthenticator(ApiKeys(db), refresh_interval=0.05) as auth:
                await auth.authenticate(bearer(new.plaintext))
                await proxy.stop()
                await db.dispose()  # no pooled connection survives: the database is gone
                with caplog.at_level(logging.WARNING, logger="podium.auth.keys"):
                    for _ in range(200):
                        if "serving the last loaded keys" in caplog.text:
                            break
                        await asyncio.sleep(0.05)
                assert "serving the last loaded keys" in caplog.text
                assert (await auth.authenticate(bearer(new.plaintext))).tenant == "acme"
        finally:
            await db.dispose()
            await proxy.stop()
