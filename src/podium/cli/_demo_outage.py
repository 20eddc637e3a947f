"""Demo scene: a provider goes down, podium fails over, its circuit opens, and it recovers.

Every row of the timeline is measured: which provider answered, how many chat calls really reached
the failing upstream (counted by the upstream itself), and the circuit state podium reports.
"""

from __future__ import annotations

import asyncio
import time

from podium.cli._demo_env import MAIN_TENANT, DemoWorld
from podium.cli._demo_render import Report
from podium.types import ChatResponse

_PROVIDER = "gpt"
_CHAT_PATH = "/v1/chat/completions"
_MAX_OUTAGE_REQUESTS = 20  # far more than the breaker needs; stops a broken breaker from looping


class _Timeline:
    def __init__(self, world: DemoWorld) -> None:
        self.world = world
        self.rows: list[tuple[object, ...]] = []
        self.requests = 0

    def circuit(self) -> str:
        return self.world.orch.get_provider_health(_PROVIDER, MAIN_TENANT).circuit

    def event(self, text: str) -> None:
        self.rows.append(("", text, "", self.circuit(), ""))

    def upstream_chats(self) -> int:
        return sum(1 for r in self.world.openai.requests if r.path == _CHAT_PATH)

    async def chat(self, prompt: str, note: str = "") -> ChatResponse:
        before = self.upstream_chats()
        response = await self.world.orch.chat(prompt, tenant=MAIN_TENANT)
        calls = self.upstream_chats() - before
        self.requests += 1
        failed = ", ".join(
            f"{a['provider']}: {a['error']}" for a in response.metadata.get("failed_attempts", [])
        )
        answered = f"answered by {response.provider}" + (f" ({note})" if note else "")
        self.rows.append((self.requests, answered, calls, self.circuit(), failed or "-"))
        return response


async def show_outage(world: DemoWorld, report: Report) -> None:
    """Fail the OpenAI upstream, watch the breaker open, then recover through half-open to closed."""
    orch = world.orch
    breaker = orch.health.settings.breaker
    report.section(
        "failover, circuit breaker and recovery",
        f"Breaker settings from config.yaml: open after {breaker.consecutive_failures} consecutive "
        f"failures, stay open {breaker.open_seconds:g} s, then half-open: closed again after "
        f"{breaker.close_after} successful trial request(s). "
        "'calls' counts the chat requests the OpenAI upstream itself received.",
    )
    t = _Timeline(world)
    world.openai.fail(503, body={"error": {"message": "simulated outage", "type": "server_error"}})
    t.event("the OpenAI upstream starts answering 503")
    for i in range(_MAX_OUTAGE_REQUESTS):
        await t.chat(f"request {i + 1} during the outage")
        if t.circuit() == "open":
            break
    opened = orch.get_provider_health(_PROVIDER, MAIN_TENANT)
    await t.chat("request while the circuit is open", "gpt skipped without a call")
    world.openai.recover()
    t.event("the OpenAI upstream recovers")
    t0 = time.monotonic()
    # Wait as long as the circuit says it stays open (a client would honour the same Retry-After).
    await asyncio.sleep(orch.get_provider_health(_PROVIDER, MAIN_TENANT).retry_after + 0.01)
    t.event(f"{time.monotonic() - t0:.1f} s later the open period is over")
    await t.chat("are you back?", "trial request")
    await t.chat("and now?")
    report.table(("#", "what happened", "calls", "gpt circuit", "failed attempts"), t.rows)
    report.fact(
        "gpt health while open",
        f"status {opened.status}, circuit {opened.circuit} ({opened.circuit_reason}), "
        f"retry after {opened.retry_after:.1f} s, error rate {opened.error_rate:.0%}, "
        f"errors {', '.join(f'{k} x{v}' for k, v in opened.errors_by_class.items()) or '-'}",
    )
    now = orch.get_provider_health(_PROVIDER, MAIN_TENANT)
    report.fact("gpt health now", f"status {now.status}, circuit {now.circuit}")
