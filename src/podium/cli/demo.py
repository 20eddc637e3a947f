"""``podium demo``: podium's main features, end to end, on a fresh machine with nothing running.

Simulated OpenAI- and Anthropic-shaped upstreams (``podium.testing``) and a webhook receiver run in
this process on 127.0.0.1; the orchestrator is built with ``Orchestrator.from_config`` on a temporary
data directory (SQLite, in-process state) and talks to them through the real adapters over HTTP. Every
figure printed is measured during the run. The scenes live in ``podium.cli._demo_*``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

import typer

from podium.errors import PodiumError

if TYPE_CHECKING:
    from podium.cli._demo_render import Report


def run(
    plain: bool = typer.Option(False, "--plain", help="No colours, ASCII tables (for logs and CI)."),
) -> None:
    """Run the demo and print what happened."""
    # The scenes and the simulated upstreams (aiohttp's server) load when the demo runs, so that every
    # other command, podium serve included, starts without them (about 200 ms of imports).
    from podium.cli._demo_render import Report

    report = Report(plain=plain)
    podium_log = logging.getLogger("podium")
    level = podium_log.level
    # podium logs each budget alert as a warning; the demo shows them itself, so keep only errors.
    podium_log.setLevel(logging.ERROR)
    try:
        asyncio.run(_demo(report))
    except PodiumError as exc:
        report.line(f"demo failed: {type(exc).__name__}: {exc}")
        raise typer.Exit(1) from exc
    finally:
        podium_log.setLevel(level)


async def _demo(report: Report) -> None:
    from podium.cli._demo_env import demo_world
    from podium.cli._demo_governance import show_budget, show_costs, show_rate_limit
    from podium.cli._demo_outage import show_outage
    from podium.cli._demo_records import show_health, show_records
    from podium.cli._demo_traffic import show_providers, show_requests

    t0 = time.perf_counter()
    report.line(
        "podium demo: simulated OpenAI- and Anthropic-shaped upstreams and a webhook receiver on "
        "127.0.0.1, the real adapters over real HTTP, SQLite in a temporary directory."
    )
    async with demo_world() as world:
        await show_providers(world, report)
        await show_requests(world, report)
        await show_outage(world, report)
        await show_rate_limit(world, report)
        await show_budget(world, report)
        await show_costs(world, report)
        await show_health(world, report)
        await show_records(world, report)
    report.line("")
    report.line(f"demo finished in {time.perf_counter() - t0:.1f} s; its temporary directory is removed.")
