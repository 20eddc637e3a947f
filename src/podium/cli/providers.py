"""``podium providers``: list the configured providers and test that each one answers.

Both commands build the orchestrator the way ``podium serve`` does (``config.yaml``, ``.env``, the
environment, and the providers stored in the encrypted configuration directory), so they show and probe
exactly what the gateway would use. ``test`` exits 0 when every probed provider answered, 1 when one
failed, and 2 when it could not run (bad configuration, no such provider).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import NoReturn, TypeVar

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from podium.errors import PodiumError
from podium.orchestrator import Orchestrator
from podium.provider_info import ProviderInfo
from podium.providers.base import CheckResult

app = typer.Typer(
    name="providers",
    help="List the configured providers and test their connectivity.",
    no_args_is_help=True,
    add_completion=False,
)

T = TypeVar("T")

_CONFIG = typer.Option(
    None,
    "--config",
    help="config.yaml to build the providers from (default: ./config.yaml).",
    show_default=False,
)
_TENANT = typer.Option(None, "--tenant", help="Only this tenant's providers.", show_default=False)


class _CannotRun(Exception):
    """The command could not do its work; the message says why."""


@app.command("list")
def list_command(tenant: str | None = _TENANT, config: Path | None = _CONFIG) -> None:
    """List the providers (from config.yaml and the config directory), API keys masked."""

    async def select(orch: Orchestrator) -> list[ProviderInfo]:
        return _select(orch, None, tenant)

    providers = _run(config, select)
    table = _table("Tenant", "Name", "Type", "Base URL", "Default model", "Priority", "Enabled", "API key")
    for p in providers:
        table.add_row(
            *(
                escape(str(cell))
                for cell in (
                    p.tenant,
                    p.name,
                    p.type,
                    p.base_url or "-",
                    p.default_model or "-",
                    p.priority,
                    "yes" if p.enabled else "no",
                    p.api_key or "-",
                )
            )
        )
    _console().print(table)


@app.command("test")
def probe_command(
    name: str | None = typer.Argument(None, help="Test only this provider (default: every provider)."),
    tenant: str | None = _TENANT,
    config: Path | None = _CONFIG,
) -> None:
    """Probe each provider (model list, or a one-token request) and report latency and errors.

    Exits 1 when any provider failed its probe.
    """

    async def probe(orch: Orchestrator) -> list[tuple[ProviderInfo, CheckResult]]:
        chosen = _select(orch, name, tenant)
        results = await asyncio.gather(*(orch.test_provider(p.name, p.tenant) for p in chosen))
        return list(zip(chosen, results, strict=True))

    outcomes = _run(config, probe)
    table = _table("Provider", "Tenant", "Type", "Result", "Latency", "Models", "Error")
    for info, result in outcomes:
        table.add_row(
            escape(info.name),
            escape(info.tenant),
            escape(info.type),
            "[green]ok[/green]" if result.success else "[red]failed[/red]",
            f"{result.latency_ms:.0f} ms",
            str(len(result.models)) if result.success else "-",
            escape(_error(result)),
        )
    out = _console()
    out.print(table)
    failed = sum(1 for _, r in outcomes if not r.success)
    if failed:
        out.print(f"{failed} of {len(outcomes)} providers failed.")
        raise typer.Exit(1)
    out.print(f"All {len(outcomes)} providers answered.")


def _error(result: CheckResult) -> str:
    if result.success:
        return "-"
    kind = f"{result.error_type}: " if result.error_type else ""
    return kind + (result.error or "no detail")


def _select(orch: Orchestrator, name: str | None, tenant: str | None) -> list[ProviderInfo]:
    providers = orch.list_providers(tenant)
    if name is not None:
        providers = [p for p in providers if p.name == name]
    if providers:
        return sorted(providers, key=lambda p: (p.tenant, p.name))
    where = f" in tenant {tenant!r}" if tenant is not None else ""
    if name is not None:
        known = ", ".join(sorted({p.name for p in orch.list_providers(tenant)})) or "none"
        raise _CannotRun(f"no provider named {name!r}{where} (configured: {known})")
    raise _CannotRun(
        f"no providers configured{where}: add them under 'providers:' in config.yaml, "
        "or create them with the API (POST /api/ai/providers)"
    )


def _run(config: Path | None, action: Callable[[Orchestrator], Awaitable[T]]) -> T:
    async def main() -> T:
        orch = await Orchestrator.from_config(config)
        try:
            return await action(orch)
        finally:
            await orch.aclose()

    try:
        return asyncio.run(main())
    except (PodiumError, _CannotRun) as exc:
        _fail(exc)


def _fail(exc: Exception) -> NoReturn:
    Console(stderr=True, highlight=False).print(f"[red]error:[/red] {escape(str(exc))}")
    raise typer.Exit(2) from exc


def _table(*columns: str) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for column in columns:
        # Errors and URLs fold; names, states and figures stay whole.
        table.add_column(column, overflow="fold", no_wrap=column not in ("Error", "Base URL"))
    return table


def _console() -> Console:
    console = Console(highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 160  # piped into a file or grep: keep each provider on one line
    return console
