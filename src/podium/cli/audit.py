"""``podium audit``: check the tamper-evident audit trail.

``podium audit verify`` walks the hash chain and exits 0 when it is intact, 1 at the first broken link
(printing which event and why), and 2 when it could not check (no database, not migrated).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from sqlalchemy.exc import SQLAlchemyError

from podium.errors import PodiumError
from podium.storage.audit import VerifyResult, verify
from podium.storage.db import Database, normalize_url
from podium.storage.migrate import current_revision

app = typer.Typer(
    name="audit",
    help="Check the tamper-evident audit trail.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def main() -> None:
    """Check the tamper-evident audit trail."""
    # A callback keeps ``verify`` a subcommand (``podium audit verify``) even while it is the only one.


class _CannotCheck(Exception):
    """The chain could not be read; the message says why."""


@app.command("verify")
def verify_command(
    database_url: str | None = typer.Option(
        None,
        "--database-url",
        envvar="DATABASE_URL",
        help="Database to check (default: storage.database_url of the configuration).",
        show_default=False,
    ),
    config: Path | None = typer.Option(
        None, "--config", help="config.yaml to read the database URL from.", show_default=False
    ),
) -> None:
    """Verify every link of the audit hash chain and report the first broken one."""
    try:
        url = normalize_url(database_url or _configured_url(config))
        if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
            # Opening it would create an empty database; there is nothing to verify.
            raise _CannotCheck(f"there is no database file at {url.database}")
        db = Database(url)
        result = asyncio.run(_verify(db))
    except (PodiumError, _CannotCheck) as exc:
        typer.echo(f"cannot verify the audit trail: {exc}", err=True)
        raise typer.Exit(2) from exc
    where = db.display_url
    if result.ok:
        typer.echo(f"audit chain OK: {result.checked} events verified in {where}")
        return
    typer.echo(f"audit chain BROKEN at event {result.first_broken_seq} in {where}: {result.reason}")
    before = "the event before it is" if result.checked == 1 else f"the {result.checked} events before it are"
    typer.echo(f"{before} intact")
    raise typer.Exit(1)


def _configured_url(config: Path | None) -> str:
    # Imported here: loading the configuration is only needed when no URL was given.
    from podium.settings import Settings

    return Settings.load(config).storage.database_url


async def _verify(db: Database) -> VerifyResult:
    try:
        if await current_revision(db) is None:
            raise _CannotCheck(f"{db.display_url} has no podium schema; run podium's migrations first")
        return await verify(db)
    except (SQLAlchemyError, OSError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else ""
        raise _CannotCheck(f"cannot read {db.display_url}: {type(exc).__name__}: {detail}") from exc
    finally:
        await db.dispose()
