from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from podium.auth import AuthSettings, CompositeAuthenticator, NoAuth, Principal, build_authenticator
from podium.errors import AuthError, ConfigError
from podium.storage import ApiKeys, Database, migrate
from tests.auth.jwt_keys import SECRET, token

JWT = {"jwt": {"secret": SECRET}}


@pytest.fixture
async def keys(tmp_path: Path) -> AsyncIterator[ApiKeys]:
    # The dispatch does not depend on the database; the key tests cover PostgreSQL.
    url = f"sqlite:///{tmp_path / 'podium.db'}"
    await migrate(url)
    async with Database(url) as db:
        yield ApiKeys(db)


async def test_each_credential_goes_to_its_authenticator(keys: ApiKeys) -> None:
    auth = build_authenticator(AuthSettings.model_validate(JWT), keys)
    assert isinstance(auth, CompositeAuthenticator)
    await auth.start()
    try:
        assert auth.api_keys is not None
        new = await auth.api_keys.create("acme", "viewer")
        jwt_principal = await auth.authenticate({"authorization": f"Bearer {token(SECRET, 'HS256')}"})
        assert jwt_principal == Principal(subject="alice", tenant="acme", role="user", method="jwt")
        by_bearer = await auth.authenticate({"authorization": f"Bearer {new.plaintext}"})
        by_header = await auth.authenticate({"x-api-key": new.plaintext})
        assert by_bearer == by_header
        assert (by_bearer.method, by_bearer.role, by_bearer.key_id) == ("api_key", "viewer", new.key.id)
        with pytest.raises(AuthError, match="signature is invalid"):
            await auth.authenticate({"authorization": f"Bearer {token('z' * 64, 'HS256')}"})
        with pytest.raises(AuthError, match="invalid API key"):
            await auth.authenticate({"x-api-key": "pdm-nope"})
    finally:
        await auth.aclose()


async def test_missing_credentials_say_how_to_authenticate(keys: ApiKeys) -> None:
    both = build_authenticator(AuthSettings.model_validate(JWT), keys)
    with pytest.raises(
        AuthError, match=r"missing credentials: send .*x-api-key.*or `Authorization: Bearer <JWT>`"
    ):
        await both.authenticate({"x-api-key": ""})
    keys_only = build_authenticator(AuthSettings(), keys)
    with pytest.raises(AuthError, match="missing credentials") as info:
        await keys_only.authenticate({})
    assert "JWT" not in info.value.message and "podium keys create" in info.value.message
    assert info.value.status == 401


async def test_credentials_of_a_kind_that_is_not_configured_are_refused_clearly(keys: ApiKeys) -> None:
    keys_only = build_authenticator(AuthSettings(), keys)
    await keys_only.start()
    try:
        with pytest.raises(AuthError, match="does not accept JWTs"):
            await keys_only.authenticate({"authorization": f"Bearer {token(SECRET, 'HS256')}"})
    finally:
        await keys_only.aclose()
    jwt_only = build_authenticator(AuthSettings.model_validate(JWT), None)
    with pytest.raises(AuthError, match="does not use API keys"):
        await jwt_only.authenticate({"x-api-key": "pdm-abc"})
    assert (
        await jwt_only.authenticate({"authorization": f"Bearer {token(SECRET, 'HS256')}"})
    ).tenant == "acme"


async def test_disabled_auth_makes_everyone_the_default_admin(
    keys: ApiKeys, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="podium.auth.chain"):
        auth = build_authenticator(AuthSettings(enabled=False), keys)
    assert "authentication is disabled" in caplog.text
    assert isinstance(auth, NoAuth)
    await auth.start()
    try:
        expected = Principal(subject="anonymous", tenant="default", role="admin", method="none")
        assert await auth.authenticate({}) == expected
        assert await auth.authenticate({"authorization": "Bearer whatever"}) == expected
        assert auth.api_keys is not None  # keys can still be managed
    finally:
        await auth.aclose()


def test_enabled_auth_without_any_way_to_check_credentials_fails_at_start() -> None:
    with pytest.raises(
        ConfigError, match=r"configure storage.database_url .* or auth.jwt, or set auth.enabled: false"
    ):
        build_authenticator(AuthSettings(), None)
    assert isinstance(build_authenticator(AuthSettings(enabled=False), None), NoAuth)
