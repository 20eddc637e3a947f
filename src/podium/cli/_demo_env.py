"""The demo's world: simulated upstreams, an alert receiver and an orchestrator on a throw-away data dir.

Everything runs in this process on 127.0.0.1 and everything on disk lives in a temporary directory
removed at the end, so ``podium demo`` works on a fresh machine and leaves nothing behind. The
orchestrator is built the way users build theirs, ``Orchestrator.from_config`` on a ``config.yaml``;
only the settings an environment variable could redirect (database, Redis, config directory) are
pinned as overrides, so a ``DATABASE_URL`` or ``REDIS_URL`` in the shell never leaks into the demo.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from podium._settings_sections import sqlite_url
from podium.cli._demo_webhook import AlertReceiver
from podium.orchestrator import Orchestrator
from podium.testing import SimulatedAnthropic, SimulatedOpenAI

#: The tenant whose traffic shows routing, failover and circuits, and the one that meets its limits.
MAIN_TENANT = "demo"
GOVERNED_TENANT = "acme"

# Short breaker timings so the outage and the recovery both fit in a few seconds.
BREAKER = {"consecutive_failures": 3, "open_seconds": 1.0, "max_open_seconds": 4.0}


@dataclass
class DemoWorld:
    """What the demo's scenes act on.

    Attributes:
        orch: The orchestrator, started from ``config_path``.
        openai: The OpenAI-shaped upstream of the main tenant (the one that goes down).
        anthropic: The Anthropic-shaped upstream of the main tenant.
        acme_upstream: The governed tenant's own OpenAI-shaped endpoint (untouched by the outage).
        receiver: The budget-alert webhook receiver.
        data_dir: The temporary data directory (SQLite database, encrypted config directory).
        config_path: The ``config.yaml`` the orchestrator was built from.
    """

    orch: Orchestrator
    openai: SimulatedOpenAI
    anthropic: SimulatedAnthropic
    acme_upstream: SimulatedOpenAI
    receiver: AlertReceiver
    data_dir: Path
    config_path: Path


def demo_config(data_dir: Path, openai: SimulatedOpenAI, anthropic: SimulatedAnthropic) -> dict[str, Any]:
    """The demo's ``config.yaml`` content: two providers of the main tenant and demo-sized timings."""
    return {
        "framework": {"data_dir": str(data_dir)},
        "routing": {"retry": {"max_retries": 0}},
        # Probes run once at start (no jitter) and then not again during the demo, so every circuit
        # change shown comes from the demo's own requests.
        "health": {"breaker": BREAKER, "check_interval": 3600, "check_jitter": 0},
        "storage": {"flush_interval": 0.1},
        "providers": [
            {
                "type": "openai",
                "name": "gpt",
                "tenant": MAIN_TENANT,
                "api_key": "sk-demo-not-a-real-key",
                "base_url": openai.base_url,
                "default_model": "gpt-4o-mini",
                "models": ["gpt-4o-mini", "text-embedding-3-small"],
                "embedding_model": "text-embedding-3-small",
                "priority": 1,
            },
            {
                "type": "anthropic",
                "name": "claude",
                "tenant": MAIN_TENANT,
                "api_key": "demo-not-a-real-key",
                "base_url": anthropic.base_url,
                "default_model": "claude-3-5-haiku-latest",
                "priority": 2,
            },
        ],
    }


@asynccontextmanager
async def demo_world(chunk_delay: float = 0.02) -> AsyncIterator[DemoWorld]:
    """Start the upstreams, the receiver and the orchestrator; tear all of it down afterwards."""
    with tempfile.TemporaryDirectory(prefix="podium-demo-") as tmp:
        data_dir = Path(tmp)
        async with (
            SimulatedOpenAI("openai-sim", chunk_delay=chunk_delay) as openai,
            SimulatedAnthropic("anthropic-sim", chunk_delay=chunk_delay) as anthropic,
            SimulatedOpenAI("acme-sim", models=("gpt-4o",)) as acme_upstream,
            AlertReceiver() as receiver,
        ):
            config_path = data_dir / "config.yaml"
            config_path.write_text(yaml.safe_dump(demo_config(data_dir, openai, anthropic), sort_keys=False))
            orch = await Orchestrator.from_config(
                config_path,
                env_file=None,  # a .env in the current directory is not the demo's
                redis_url=None,
                cost_alert_webhook=None,
                storage={"database_url": sqlite_url(data_dir)},
                config_store={"directory": str(data_dir / "config")},
                governance={"webhook_secret": receiver.secret, "webhook_attempts": 2},
            )
            try:
                yield DemoWorld(orch, openai, anthropic, acme_upstream, receiver, data_dir, config_path)
            finally:
                await orch.aclose()
