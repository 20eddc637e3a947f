"""``podium keys``: create, list and revoke the gateway's API keys.

The database is the configured one (``storage.database_url`` of ``config.yaml``, ``DATABASE_URL``, or
``--database-url``); its schema is migrated first. Running gateways pick up new and revoked keys within
``auth.key_refresh_interval`` seconds (5 by default).
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NoReturn, TypeVar

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from podium.auth.keys import validate_new_key
from podium.auth.principal import ROLES
from podium.errors import NotFound, PodiumError
from podium.storage.api_keys import ApiKey, ApiKeys, NewApiKey
from podium.storage.db import Database
from podium.storage.migrate import migrate
from podium.storage.records import utcnow

app = typer.Typer(
    name="keys",
    help="Create, list and revoke API keys for the gateway.",
    no_args_is_help=True,
    add_completion=False,
)

T = TypeVar("T")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_DURATION = re.compile(r"(?:\d+[smhdw])+")
_SHORT_ID = 12  # ids are 32 hex characters; this many tell keys apart in practice (revoke takes a prefix)
_MIN_PREFIX = 6

_CONFIG = typer.Option(
    None, "--config", help="config.yaml to read the database URL from.", show_default=False
)
_DATABASE_URL = typer.Option(
    None,
    "--database-url",
    envvar="DATABASE_URL",
    help="Database holding the keys (default: storage.database_url of the configuration).",
    show_default=False,
)


class _Failed(Exception):
    """The command could not do its work; the message says why."""


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``1w``, ``90m``, ``1d12h`` as a timedelta.

    Raises:
        typer.BadParameter: the text is not such a duration, or is zero.
    """
    compact = text.strip().lower()
    if not _DURATION.fullmatch(compact):
        raise typer.BadParameter(f"{text!r} is not a duration: use e.g. 30d, 12h, 1w or 1d12h")
    seconds = sum(int(n) * _UNITS[unit] for n, unit in re.findall(r"(\d+)([smhdw])", compact))
    if seconds <= 0:
        raise typer.BadParameter("must be longer than zero")
    return timedelta(seconds=seconds)


def _duration(value: str | None) -> str | None:
    if value is not None:
        parse_duration(value)
    return value


def _role(value: str) -> str:
    if value not in ROLES:
        raise typer.BadParameter(f"{value!r} is not a role: use one of {', '.join(ROLES)}")
    return value


@app.command("create")
def create(
    tenant: str = typer.Option(..., "--tenant", help="Tenant the key acts for.", show_default=False),
    role: str = typer.Option("user", "--role", callback=_role, help=f"One of {', '.join(ROLES)}."),
    name: str = typer.Option("", "--name", help="A name to recognise the key by (e.g. ci, alice)."),
    expires_in: str | None = typer.Option(
        None,
        "--expires-in",
        callback=_duration,
        help="Lifetime, e.g. 30d, 12h, 1w (default: never expires).",
        show_default=False,
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the key (for scripts)."),
    config: Path | None = _CONFIG,
    database_url: str | None = _DATABASE_URL,
) -> None:
    """Create an API key and print it once."""
    lifetime = parse_duration(expires_in) if expires_in is not None else None
    expires_at = utcnow() + lifetime if lifetime is not None else None
    try:
        validate_new_key(tenant, role, expires_at)
    except PodiumError as exc:
        _fail(exc)

    async def make(keys: ApiKeys) -> NewApiKey:
        return await keys.create(tenant=tenant, role=role, name=name, expires_at=expires_at)

    new = _run(config, database_url, make)
    if quiet:
        typer.echo(new.plaintext)
        return
    out = _console()
    key = new.key
    label = f" '{escape(key.name)}'" if key.name else ""
    out.print(f"Created API key{label} for tenant [bold]{escape(key.tenant)}[/bold]")
    out.print(f"  id       {key.id}")
    out.print(f"  role     {key.role}")
    out.print(f"  expires  {_when(key.expires_at) if key.expires_at else 'never'}")
    out.print(new.plaintext, soft_wrap=True, markup=False)
    out.print("[yellow]Store this key now: it will not be shown again.[/yellow]")


@app.command("list")
def list_keys(
    tenant: str | None = typer.Option(None, "--tenant", help="Only this tenant's keys.", show_default=False),
    include_revoked: bool = typer.Option(False, "--all", help="Include revoked keys."),
    config: Path | None = _CONFIG,
    database_url: str | None = _DATABASE_URL,
) -> None:
    """List API keys (never the keys themselves: their first characters)."""
    keys = _run(config, database_url, lambda k: k.list_keys(tenant=tenant, include_revoked=include_revoked))
    out = _console()
    if not keys:
        where = f" for tenant {escape(tenant)!r}" if tenant else ""
        out.print(f"No API keys{where}. Create one with `podium keys create --tenant NAME`.")
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for column in ("ID", "Key", "Tenant", "Role", "Name", "Expires", "Last used", "Status"):
        # Free text folds; ids, dates and states stay whole.
        table.add_column(column, overflow="fold", no_wrap=column not in ("Tenant", "Name"))
    now = utcnow()
    for k in keys:
        table.add_row(
            k.id[:_SHORT_ID],
            f"{k.prefix}...",
            escape(k.tenant),
            k.role,
            escape(k.name) or "-",
            _day(k.expires_at) if k.expires_at else "never",
            _day(k.last_used_at) if k.last_used_at else "never",
            _status(k, now),
        )
    out.print(table)


@app.command("revoke")
def revoke(
    key_id: str = typer.Argument(
        ..., metavar="ID", help="The key's id, or its first characters (see `podium keys list`)."
    ),
    tenant: str | None = typer.Option(
        None, "--tenant", help="Only revoke it if it belongs to this tenant.", show_default=False
    ),
    config: Path | None = _CONFIG,
    database_url: str | None = _DATABASE_URL,
) -> None:
    """Revoke an API key: it stops working on every gateway."""

    async def do(keys: ApiKeys) -> tuple[ApiKey, bool]:
        before = await _find(keys, key_id, tenant)
        if before.revoked_at is not None:
            return before, False
        return await keys.revoke(before.id, tenant=tenant), True

    key, changed = _run(config, database_url, do)
    out = _console()
    what = f"API key {key.prefix}... ({key.id}) of tenant {escape(key.tenant)}"
    if not changed:
        assert key.revoked_at is not None
        out.print(f"{what} was already revoked at {_when(key.revoked_at)}.")
        return
    out.print(f"Revoked {what}.")
    out.print("Running gateways refuse it within auth.key_refresh_interval (5 s by default).")


def _run(config: Path | None, database_url: str | None, action: Callable[[ApiKeys], Awaitable[T]]) -> T:
    try:
        return asyncio.run(_with_keys(config, database_url, action))
    except (PodiumError, _Failed) as exc:
        _fail(exc)


def _fail(exc: Exception) -> NoReturn:
    Console(stderr=True, highlight=False).print(f"[red]error:[/red] {escape(str(exc))}")
    raise typer.Exit(1) from exc


async def _with_keys(
    config: Path | None, database_url: str | None, action: Callable[[ApiKeys], Awaitable[T]]
) -> T:
    if database_url is None:
        # Imported here: the configuration is only read when no URL was given.
        from podium.settings import Settings

        database_url = Settings.load(config).storage.database_url
    db = Database(database_url)
    try:
        await migrate(db)
        return await action(ApiKeys(db))
    except (SQLAlchemyError, OSError) as exc:
        # The class and first line only: no traceback, and the URL shown without its password.
        detail = str(getattr(exc, "orig", None) or exc).splitlines()
        raise _Failed(
            f"cannot use the database {db.display_url}: {type(exc).__name__}: {detail[0] if detail else ''}"
        ) from exc
    finally:
        await db.dispose()


async def _find(keys: ApiKeys, key_id: str, tenant: str | None) -> ApiKey:
    """The key with this id, or the one key whose id starts with it."""
    key_id = key_id.strip().lower()
    if len(key_id) >= 32 or len(key_id) < _MIN_PREFIX:
        return await keys.get(key_id, tenant=tenant)
    every = await keys.list_keys(tenant=tenant, include_revoked=True)
    matches = [k for k in every if k.id.startswith(key_id)]
    if not matches:
        raise NotFound(f"no API key id starts with {key_id!r}; `podium keys list --all` shows them")
    if len(matches) > 1:
        raise _Failed(f"{len(matches)} API keys have ids starting with {key_id!r}: give more characters")
    return matches[0]


def _status(key: ApiKey, now: datetime) -> str:
    if key.revoked_at is not None:
        return "[red]revoked[/red]"
    if key.expires_at is not None and now >= key.expires_at:
        return "[yellow]expired[/yellow]"
    return "[green]active[/green]"


def _console() -> Console:
    console = Console(highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 160  # piped into a file or grep: keep each key on one line
    return console


def _day(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d")


def _when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
