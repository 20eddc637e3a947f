"""Entry point of the ``podium`` command.

Sub-commands are imported when they run, not when ``podium`` starts: ``podium serve`` is a long-lived
process, and importing the demo, the benchmark and the table-printing commands (rich) with it cost
2.3 MiB of its resident memory for code it never runs. ``podium --help`` still lists every command
(it imports them all to show their help).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, NamedTuple

import typer
from typer.core import TyperGroup

from podium import __version__

if TYPE_CHECKING:
    # Typer bundles its own Click; its groups take these types (used in annotations only).
    from typer._click import Command, Context


class _Lazy(NamedTuple):
    module: str
    attribute: str  # a function (one command) or a ``typer.Typer`` (a group of commands)
    help: str | None = None  # a function's help; a group keeps its own


# Imported when asked for, listed by ``podium --help`` in this order (``version`` after ``bench``).
_COMMANDS: dict[str, _Lazy] = {
    "demo": _Lazy(
        "podium.cli.demo", "run", "Run podium against simulated upstreams on loopback and show what it does."
    ),
    "serve": _Lazy(
        "podium.cli.serve", "serve", "Run the gateway server (OpenAI/Anthropic-compatible /v1 and /api/ai)."
    ),
    "bench": _Lazy(
        "podium.cli.bench",
        "run",
        "Measure the gateway's added latency, CPU per request, throughput, memory and start-up time.",
    ),
    "audit": _Lazy("podium.cli.audit", "app"),
    "data": _Lazy("podium.cli.data", "app"),
    "keys": _Lazy("podium.cli.keys", "app"),
    "providers": _Lazy("podium.cli.providers", "app"),
}


def _load(name: str, lazy: _Lazy) -> Command:
    target: Any = getattr(importlib.import_module(lazy.module), lazy.attribute)
    if not isinstance(target, typer.Typer):
        single = typer.Typer(add_completion=False)
        single.command(name=name, help=lazy.help)(target)
        target = single
    command = typer.main.get_command(target)
    command.name = name
    return command


class _LazyGroup(TyperGroup):
    """A command group that imports each sub-command's module the first time it is asked for."""

    def list_commands(self, ctx: Context) -> list[str]:
        names = list(_COMMANDS)
        eager = [name for name in super().list_commands(ctx) if name not in _COMMANDS]
        return [*names[:3], *eager, *names[3:]]

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        if cmd_name not in self.commands and cmd_name in _COMMANDS:
            self.commands[cmd_name] = _load(cmd_name, _COMMANDS[cmd_name])
        return super().get_command(ctx, cmd_name)

    def resolve_command(self, ctx: Context, args: list[str]) -> tuple[str | None, Command | None, list[str]]:
        if args and args[0] not in self.list_commands(ctx):
            # A mistyped name: load every command, so that Typer's "Did you mean ...?" knows them all.
            for name in _COMMANDS:
                self.get_command(ctx, name)
        return super().resolve_command(ctx, args)


app = typer.Typer(
    name="podium",
    no_args_is_help=True,
    add_completion=False,
    cls=_LazyGroup,
)


@app.callback()
def _podium() -> None:
    """podium: one API and gateway in front of many LLM providers."""
    # A callback keeps ``podium`` a group: with ``version`` its only eager command, Typer would
    # otherwise make that command the whole program.


@app.command()
def version() -> None:
    """Print podium's version."""
    typer.echo(__version__)
