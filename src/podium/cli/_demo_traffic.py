"""Demo scenes: the providers, then one chat, one stream and one embedding with usage and cost."""

from __future__ import annotations

import time

from podium.cli._demo_env import GOVERNED_TENANT, MAIN_TENANT, DemoWorld
from podium.cli._demo_render import Report, ms, usd
from podium.types import ChatChunk

_ACME_KEY = "sk-acme-not-a-real-key"


async def show_providers(world: DemoWorld, report: Report) -> None:
    """The configured providers (from config.yaml) plus one created at run time for a second tenant."""
    orch = world.orch
    report.section(
        "providers",
        f"The orchestrator was built with Orchestrator.from_config({world.config_path.name!r}); its data "
        f"directory (SQLite database, encrypted config directory) is {world.data_dir}.",
    )
    # Created through the API, as an admin would at run time: stored encrypted in the config directory.
    await orch.create_provider(
        type="openai",
        name="gpt-acme",
        tenant=GOVERNED_TENANT,
        api_key=_ACME_KEY,
        base_url=world.acme_upstream.base_url,
        default_model="gpt-4o",
    )
    store = orch.config_manager.store
    rows = []
    for p in orch.list_providers():
        source = "API, stored encrypted" if store.get(p.tenant, p.name) is not None else "config.yaml"
        rows.append(
            (p.tenant, p.name, p.type, p.base_url or "", p.default_model or "", p.priority, p.api_key, source)
        )
    report.table(("tenant", "name", "type", "base URL", "default model", "priority", "API key", "from"), rows)
    on_disk = store.tenant_file(GOVERNED_TENANT).read_text()
    report.fact(
        f"{store.tenant_file(GOVERNED_TENANT).name} on disk",
        "the API key is sealed (AES-256-GCM), its clear text appears nowhere in the file"
        if _ACME_KEY not in on_disk
        else "the API key is stored IN CLEAR",
    )


async def show_requests(world: DemoWorld, report: Report) -> None:
    """Chat, stream and embeddings through the real adapters, each with provider, usage and cost."""
    orch = world.orch
    report.section(
        "chat, streaming and embeddings",
        f"Tenant {MAIN_TENANT!r}: gpt has priority 1, claude priority 2. Costs come from the public "
        "price tables (genai-prices) for the model that answered.",
    )
    chat = await orch.chat([{"role": "user", "content": "Hello"}], tenant=MAIN_TENANT, max_tokens=100)

    report.line("streamed from claude, as the chunks arrive:")
    last: ChatChunk | None = None
    t0 = time.perf_counter()
    async for chunk in orch.stream(
        "Count to five: one two three four five", tenant=MAIN_TENANT, provider="claude"
    ):
        report.stream_text(chunk.delta)
        last = chunk
    stream_ms = (time.perf_counter() - t0) * 1000
    report.line("")

    emb = await orch.embed(["podium routes requests", "to many providers"], tenant=MAIN_TENANT)

    rows: list[tuple[object, ...]] = [
        (
            "chat",
            f"{chat.provider} / {chat.model}",
            chat.usage.prompt_tokens,
            chat.usage.completion_tokens,
            usd(chat.cost),
            ms(chat.latency_ms),
            chat.content or "",
        )
    ]
    if last is not None:
        usage = last.usage
        rows.append(
            (
                "stream",
                f"{last.provider} / {last.model}",
                usage.prompt_tokens if usage else "missing",
                usage.completion_tokens if usage else "missing",
                usd(last.cost),
                ms(stream_ms),
                "usage and cost arrived on the last chunk",
            )
        )
    rows.append(
        (
            "embeddings",
            f"{emb.provider} / {emb.model}",
            emb.usage.prompt_tokens,
            0,
            usd(emb.cost),
            ms(emb.latency_ms),
            f"{len(emb.embeddings)} vectors of {len(emb.embeddings[0])} dimensions",
        )
    )
    report.table(
        ("request", "provider / model", "prompt tok", "completion tok", "cost", "latency", "answer"), rows
    )
