"""``podium data``: export an instance's configuration and history to JSON, and import it elsewhere.

``podium data export out.json`` writes providers, templates, tenants and conversation history with no
secret in it (``--include-secrets`` puts them in, in clear: keep such a file safe).
``podium data import out.json --secret acme/gpt:api_key=sk-...`` recreates them; without the secrets an
export lacks, it lists what is missing and imports nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import typer

from podium.errors import PodiumError, RequestError

app = typer.Typer(
    name="data",
    help="Export and import configuration and history.",
    no_args_is_help=True,
    add_completion=False,
)

_CONFIG = typer.Option(None, "--config", help="config.yaml of the instance.", show_default=False)


@app.command("export")
def export_command(
    output: Path = typer.Argument(..., help="File to write ('-' for standard output)."),
    config: Path | None = _CONFIG,
    include_secrets: bool = typer.Option(
        False, "--include-secrets", help="Put API keys and other secrets in the file, in clear."
    ),
    include_history: bool = typer.Option(
        True, "--history/--no-history", help="Include conversation history."
    ),
) -> None:
    """Write the instance's providers, templates, tenants and history as JSON."""
    try:
        doc = asyncio.run(_export(config, include_secrets, include_history))
    except PodiumError as exc:
        typer.echo(f"export failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    if str(output) == "-":
        sys.stdout.write(text)
        return
    if include_secrets:
        # The file holds secrets in clear: readable by its owner only, from the moment it exists.
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        typer.echo(f"warning: {output} holds secrets in clear; keep it safe", err=True)
    else:
        output.write_text(text, encoding="utf-8")
    providers, history = len(doc["providers"]), len(doc.get("history", []))
    typer.echo(f"exported {providers} providers and {history} conversations to {output}")


@app.command("import")
def import_command(
    source: Path = typer.Argument(..., help="An export file ('-' for standard input)."),
    config: Path | None = _CONFIG,
    secret: list[str] = typer.Option(
        [],
        "--secret",
        help="A secret the export lacks, as TENANT/PROVIDER:NAME=VALUE (repeatable).",
        show_default=False,
    ),
) -> None:
    """Recreate an export's providers, templates and history in this instance (all or nothing)."""
    try:
        raw = sys.stdin.read() if str(source) == "-" else source.read_text(encoding="utf-8")
        data = json.loads(raw)
    except (OSError, json.JSONDecodeError) as exc:
        typer.echo(f"cannot read {source}: {exc}", err=True)
        raise typer.Exit(2) from exc
    try:
        secrets = _parse_secrets(secret)
        counts = asyncio.run(_import(config, data, secrets))
    except PodiumError as exc:
        typer.echo(f"import failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(
        f"imported {counts['providers']} providers, {counts['templates']} templates, "
        f"{counts['limits']} rate limits, {counts['budgets']} budgets and "
        f"{counts['conversations']} conversations"
    )


def _parse_secrets(items: list[str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for item in items:
        target, sep, assignment = item.partition(":")
        name, eq, value = assignment.partition("=")
        if not sep or not eq or "/" not in target or not name:
            shown = item.split("=")[0]  # never echo the value: it is a secret
            raise RequestError(f"--secret must look like TENANT/PROVIDER:NAME=VALUE, got {shown!r}")
        out.setdefault(target, {})[name] = value
    return out


async def _export(config: Path | None, include_secrets: bool, include_history: bool) -> dict[str, Any]:
    from podium.orchestrator import Orchestrator

    orch = await Orchestrator.from_config(config)
    try:
        return await orch.export_data(include_secrets=include_secrets, include_history=include_history)
    finally:
        await orch.aclose()


async def _import(
    config: Path | None, data: dict[str, Any], secrets: dict[str, dict[str, str]]
) -> dict[str, int]:
    from podium.orchestrator import Orchestrator

    orch = await Orchestrator.from_config(config)
    try:
        return await orch.import_data(data, secrets=secrets)
    finally:
        await orch.aclose()
