"""``podium demo``: the main features, end to end, against simulated upstreams on loopback.

Nothing to configure and nothing external: two fake providers (OpenAI- and Anthropic-shaped, from
``podium.testing``) run inside the process, and the real adapters talk to them over HTTP.
"""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from podium.errors import PodiumError
from podium.orchestrator import Orchestrator
from podium.routing.retry import RetryPolicy
from podium.testing import SimulatedAnthropic, SimulatedOpenAI
from podium.types import ChatResponse


def run(
    tenant: str = typer.Option("demo", help="Tenant the demo providers belong to."),
    plain: bool = typer.Option(False, help="No colours or boxes (for logs)."),
) -> None:
    """Run the demo and print a report."""
    console = Console(no_color=plain, highlight=False, force_terminal=None if not plain else False)
    try:
        asyncio.run(_demo(console, tenant))
    except PodiumError as exc:
        console.print(f"[red]demo failed:[/red] {exc}")
        raise typer.Exit(1) from exc


def _response_table(title: str, r: ChatResponse) -> Table:
    t = Table(title=title, show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    t.add_row("content", escape(r.content or ""))
    t.add_row("provider / model", f"{r.provider} / {r.model}")
    t.add_row("finish reason", str(r.finish_reason))
    t.add_row(
        "usage",
        f"prompt {r.usage.prompt_tokens}, completion {r.usage.completion_tokens}, "
        f"total {r.usage.total_tokens}",
    )
    t.add_row("latency", f"{r.latency_ms:.1f} ms")
    failed = r.metadata.get("failed_attempts")
    if failed:
        t.add_row("failed attempts", "; ".join(f"{a['provider']}: {a['error']}" for a in failed))
    return t


async def _demo(console: Console, tenant: str) -> None:
    console.print(Panel.fit("podium demo: two simulated upstreams on 127.0.0.1, real adapters, real HTTP"))
    async with (
        SimulatedOpenAI("openai-sim", chunk_delay=0.02) as oa,
        SimulatedAnthropic("anthropic-sim", chunk_delay=0.02) as an,
        Orchestrator(retry=RetryPolicy(max_retries=0)) as orch,
    ):
        await orch.create_provider(
            type="openai",
            name="gpt",
            tenant=tenant,
            api_key="sk-demo-not-a-real-key",
            base_url=oa.base_url,
            default_model="gpt-4o-mini",
            priority=1,
            models=["gpt-4o-mini", "text-embedding-3-small"],
            embedding_model="text-embedding-3-small",
        )
        await orch.create_provider(
            type="anthropic",
            name="claude",
            tenant=tenant,
            api_key="demo-not-a-real-key",
            base_url=an.base_url,
            default_model="claude-3-5-haiku-latest",
            priority=2,
        )
        table = Table(title="1. providers of tenant " + repr(tenant), title_justify="left")
        for col in ("name", "type", "base URL", "default model", "priority", "API key (masked)"):
            table.add_column(col)
        for p in orch.list_providers(tenant):
            table.add_row(
                p.name, p.type, p.base_url or "", p.default_model or "", str(p.priority), p.api_key or ""
            )
        console.print(table)

        r = await orch.chat([{"role": "user", "content": "Hello"}], tenant=tenant, max_tokens=100)
        console.print(_response_table("2. chat (priority 1 answers)", r))

        console.print("[bold]3. streaming[/bold] from claude: ", end="")
        last = None
        async for chunk in orch.stream(
            "Count to 5: one two three four five", tenant=tenant, provider="claude"
        ):
            console.print(chunk.delta, end="", markup=False)
            last = chunk
        usage = last.usage if last is not None else None
        console.print(
            f"\n   stream ended with usage: {usage.prompt_tokens if usage else '?'} prompt, "
            f"{usage.completion_tokens if usage else '?'} completion tokens\n"
        )

        e = await orch.embed(["podium routes requests", "to many providers"], tenant=tenant, provider="gpt")
        console.print(
            f"[bold]4. embeddings[/bold]: {len(e.embeddings)} vectors of {e.dimensions} dimensions "
            f"from {e.provider}/{e.model}, {e.usage.prompt_tokens} tokens\n"
        )

        oa.fail(503, body={"error": {"message": "simulated outage", "type": "server_error"}})
        r = await orch.chat("Are you there?", tenant=tenant)
        console.print(_response_table("5. failover: the OpenAI upstream answers 503, claude takes over", r))
        oa.recover()
        r = await orch.chat("And now?", tenant=tenant)
        console.print(f"[bold]6. recovery[/bold]: upstream healthy again, answered by {r.provider}\n")

        stats = orch.get_statistics(tenant)
        st = Table(title="7. statistics", title_justify="left")
        for col in ("provider", "attempts", "successes", "errors", "avg latency", "errors by type"):
            st.add_column(col)
        for ps in stats.providers.values():
            st.add_row(
                ps.provider,
                str(ps.requests),
                str(ps.successes),
                str(ps.errors),
                f"{ps.avg_latency_ms:.1f} ms",
                ", ".join(f"{k}: {v}" for k, v in ps.errors_by_type.items()) or "-",
            )
        console.print(st)
        console.print(
            f"requests: {stats.total_requests}, failed: {stats.total_errors}, "
            f"upstream attempts: {stats.total_attempts}"
        )
