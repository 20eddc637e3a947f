from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert
from typer.testing import CliRunner, Result

from podium.cli.keys import app
from podium.errors import AuthError
from podium.storage import ApiKeys, Database, migrate
from podium.storage.records import utcnow
from podium.storage.tables import api_keys
from tests.storage import database_url

KEY = re.compile(r"^pdm-[A-Za-z0-9_-]{43}$", re.MULTILINE)


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with database_url(request.param, tmp_path) as url:
        yield url


def flat(result: Result) -> str:
    """The output with line wrapping undone (rich wraps at the terminal width)."""
    return " ".join(result.output.replace("│", " ").split())


async def keys_cli(*args: str, env: dict[str, str] | None = None) -> Result:
    # The command runs its own event loop, so it runs in a thread beside the test's loop.
    return await asyncio.to_thread(CliRunner().invoke, app, list(args), env=env)


async def test_create_list_revoke(db_url: str) -> None:
    env = {"DATABASE_URL": db_url}
    created = await keys_cli(
        "create", "--tenant", "my-app", "--role", "tenant_admin", "--name", "ci", env=env
    )
    assert created.exit_code == 0, created.output
    found = KEY.search(created.output)
    assert found, created.output
    plaintext = found.group(0)
    assert "will not be shown again" in created.output
    assert "Created API key 'ci' for tenant my-app" in created.output
    assert re.search(r"^  role +tenant_admin$", created.output, re.MULTILINE), created.output

    async with Database(db_url) as db:
        key = await ApiKeys(db).authenticate(plaintext)
    assert (key.tenant, key.role, key.name, key.expires_at) == ("my-app", "tenant_admin", "ci", None)

    await keys_cli("create", "--tenant", "other", env=env)
    listed = await keys_cli("list", "--tenant", "my-app", env={**env, "COLUMNS": "200"})
    assert listed.exit_code == 0, listed.output
    short = key.id[:12]
    assert short in listed.output and f"{key.prefix}..." in listed.output and "active" in listed.output
    assert plaintext not in listed.output and "other" not in listed.output
    everyone = await keys_cli("list", env={**env, "COLUMNS": "200"})
    assert "my-app" in everyone.output and "other" in everyone.output

    revoked = await keys_cli("revoke", short, env=env)  # the id as `list` shows it
    assert revoked.exit_code == 0, revoked.output
    assert f"Revoked API key {key.prefix}... ({key.id}) of tenant my-app." in flat(revoked)
    async with Database(db_url) as db:
        with pytest.raises(AuthError, match="was revoked"):
            await ApiKeys(db).authenticate(plaintext)
    again = await keys_cli("revoke", key.id, env=env)
    assert again.exit_code == 0 and "was already revoked" in flat(again)

    assert short not in (await keys_cli("list", env={**env, "COLUMNS": "200"})).output
    with_revoked = await keys_cli("list", "--all", env={**env, "COLUMNS": "200"})
    assert short in with_revoked.output and "revoked" in with_revoked.output


async def test_expiry_and_quiet_output(tmp_path: Path) -> None:
    # The database of the configured data directory, as a user without DATABASE_URL gets it.
    env = {"PODIUM_FRAMEWORK__DATA_DIR": str(tmp_path / "data")}
    before = utcnow()
    created = await keys_cli("create", "--tenant", "acme", "--expires-in", "30d", "-q", env=env)
    assert created.exit_code == 0, created.output
    assert KEY.fullmatch(created.output.strip()), created.output
    async with Database(f"sqlite:///{tmp_path / 'data' / 'podium.db'}") as db:
        key = await ApiKeys(db).authenticate(created.output.strip())
    assert key.role == "user" and key.expires_at is not None
    assert before + timedelta(days=30) <= key.expires_at <= utcnow() + timedelta(days=30)
    listed = await keys_cli("list", env={**env, "COLUMNS": "200"})
    assert key.expires_at.strftime("%Y-%m-%d") in listed.output


async def test_config_file_names_the_database(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"storage:\n  database_url: sqlite:///{tmp_path / 'elsewhere.db'}\n")
    created = await keys_cli("create", "--tenant", "acme", "--config", str(config), "-q")
    assert created.exit_code == 0, created.output
    async with Database(f"sqlite:///{tmp_path / 'elsewhere.db'}") as db:
        assert (await ApiKeys(db).authenticate(created.output.strip())).tenant == "acme"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "owner"], "Invalid value for '--role': 'owner' is not a role: use one of admin"),
        (
            ["--expires-in", "soon"],
            "Invalid value for '--expires-in': 'soon' is not a duration: use e.g. 30d",
        ),
        (["--expires-in", "0d"], "Invalid value for '--expires-in': must be longer than zero"),
        (["--name", "x"], "Missing option '--tenant'"),
    ],
)
async def test_bad_arguments_are_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    tenant = [] if "--name" in args else ["--tenant", "a"]
    result = await keys_cli("create", *tenant, *args, env={"DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}"})
    assert result.exit_code == 2
    assert message in flat(result)
    assert not (tmp_path / "p.db").exists()


async def test_errors_are_messages_not_tracebacks(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}"}
    missing = await keys_cli("revoke", "0123abc", env=env)
    assert missing.exit_code == 1
    assert "error: no API key id starts with '0123abc'" in flat(missing) and "Traceback" not in missing.output

    fresh = {"DATABASE_URL": f"sqlite:///{tmp_path / 'untouched.db'}"}
    empty = await keys_cli("create", "--tenant", " ", env=fresh)
    assert empty.exit_code == 1 and "tenant must not be empty" in flat(empty)
    assert not (tmp_path / "untouched.db").exists()

    down = await keys_cli("list", "--database-url", "postgresql://app:hunter2-pw@127.0.0.1:1/podium")
    assert down.exit_code == 1
    assert "error: cannot use the database postgresql+asyncpg://app:***@127.0.0.1:1/podium" in flat(down)
    assert "hunter2-pw" not in down.output and "Traceback" not in down.output

    bad_config = tmp_path / "bad.yaml"
    bad_config.write_text("storage:\n  databse_url: x\n")
    result = await keys_cli("list", "--config", str(bad_config))
    assert result.exit_code == 1 and "databse_url" in flat(result) and "Traceback" not in result.output


async def test_listing_nothing_says_how_to_create_a_key(tmp_path: Path) -> None:
    result = await keys_cli(
        "list", "--tenant", "acme", env={"DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}"}
    )
    assert result.exit_code == 0
    assert "No API keys for tenant 'acme'. Create one with `podium keys create" in flat(result)


async def test_revoke_takes_a_unique_id_prefix(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    await migrate(url)
    async with Database(url) as db, db.transaction() as conn:
        now = utcnow()
        rows = [
            {
                "id": f"abcdef{n:026d}",
                "key_hash": f"{n:064d}",
                "prefix": "pdm-x",
                "tenant": "acme",
                "role": "user",
                "name": f"k{n}",
                "created_at": now,
            }
            for n in (1, 2)
        ]
        await conn.execute(insert(api_keys), rows)
    ambiguous = await keys_cli("revoke", "abcdef", env={"DATABASE_URL": url})
    assert ambiguous.exit_code == 1
    assert "2 API keys have ids starting with 'abcdef': give more characters" in flat(ambiguous)
    too_short = await keys_cli("revoke", "abc", env={"DATABASE_URL": url})
    assert too_short.exit_code == 1 and "not found" in flat(too_short)

    revoked = await keys_cli("revoke", "ABCDEF" + "0" * 25 + "2", env={"DATABASE_URL": url})
    assert revoked.exit_code == 0, revoked.output
    async with Database(url) as db:
        assert [k.name for k in await ApiKeys(db).list_keys()] == ["k1"]
