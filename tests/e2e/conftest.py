from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from podium.orchestrator import Orchestrator
from podium.routing.retry import RetryPolicy
from podium.server import create_app
from podium.testing import SimulatedAnthropic, SimulatedOpenAI
from tests.server.live import authenticator, serve, token


@dataclass
class Gateway:
    url: str
    orch: Orchestrator
    openai_up: SimulatedOpenAI
    anthropic_up: SimulatedAnthropic

    def key(self, role: str = "user", tenant: str = "acme") -> str:
        return token(role, tenant)  # type: ignore[arg-type]


@pytest.fixture
async def gateway() -> AsyncIterator[Gateway]:
    """podium on a real port in front of simulated OpenAI and Anthropic upstreams (tenant acme)."""
    async with SimulatedOpenAI("oai") as oai, SimulatedAnthropic("ant", models=("claude-haiku-4-5",)) as ant:
        orch = Orchestrator(retry=RetryPolicy(max_retries=0))
        await orch.create_provider(
            type="openai",
            name="oai",
            tenant="acme",
            base_url=oai.base_url,
            api_key="sk-test-upstream",
            default_model="gpt-4o-mini",
            models=["gpt-4o-mini", "text-embedding-3-small"],
            priority=1,
        )
        await orch.create_provider(
            type="anthropic",
            name="ant",
            tenant="acme",
            base_url=ant.base_url,
            api_key="sk-ant-test-upstream",
            default_model="claude-haiku-4-5",
            models=["claude-haiku-4-5"],
            priority=2,
        )
        app = create_app(
            orch,
            authenticator=authenticator(),
            aliases={"fast": "gpt-4o-mini", "smart": "ant/claude-haiku-4-5"},
            max_body_bytes=64 * 1024,
        )
        try:
            async with serve(app) as url:
                yield Gateway(url, orch, oai, ant)
        finally:
            await orch.aclose()
