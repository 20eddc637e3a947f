"""Entry point of the ``podium`` command."""

from __future__ import annotations

import typer

from podium import __version__
from podium.cli import audit, bench, data, demo, keys, providers, serve

app = typer.Typer(
    name="podium",
    help="podium: one API and gateway in front of many LLM providers.",
    no_args_is_help=True,
    add_completion=False,
)
app.command(name="demo", help="Run podium against simulated upstreams on loopback and show what it does.")(
    demo.run
)
app.command(name="serve", help="Run the gateway server (OpenAI/Anthropic-compatible /v1 and /api/ai).")(
    serve.serve
)
app.command(
    name="bench",
    help="Measure the gateway's added latency, CPU per request, throughput, memory and start-up time.",
)(bench.run)
app.add_typer(audit.app, name="audit")
app.add_typer(data.app, name="data")
app.add_typer(keys.app, name="keys")
app.add_typer(providers.app, name="providers")


@app.command()
def version() -> None:
    """Print podium's version."""
    typer.echo(__version__)
