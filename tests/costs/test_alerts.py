"""Budget alerts reach a real SMTP server and a real webhook receiver, once per threshold and period."""

from __future__ import annotations

import email
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from pydantic import SecretStr

from podium.costs import GovernanceSettings
from podium.costs.alerts import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    BudgetAlert,
    BudgetAlertEvent,
    WebhookChannel,
    WebhookFailed,
    verify,
)
from podium.events import EventBus
from podium.limits import RequestEstimate
from podium.limits.governance import Governance
from podium.state import MemoryStateStore, RedisStateStore, StateStore
from podium.types import Usage
from tests.state.stores import REDIS_URL

SECRET = "whsec-test-secret"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Inbox:
    messages: list[email.message.Message] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@dataclass
class Hooks:
    url: str
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    fail_first: int = 0


@pytest.fixture
async def hooks() -> AsyncIterator[Hooks]:
    port = _free_port()
    state = Hooks(url=f"http://127.0.0.1:{port}/cost?token=abc")

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        if state.fail_first:
            state.fail_first -= 1
            return web.Response(status=503)
        state.received.append((dict(request.headers), body))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/cost", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield state
    await runner.cleanup()


def _settings(port: int) -> GovernanceSettings:
    return GovernanceSettings.model_validate(
        {
            "smtp": {"host": "127.0.0.1", "port": port, "from": "podium@example.com", "starttls": False},
            "webhookSecret": SECRET,
        }
    )


async def _spend(gov: Governance, cost: float) -> None:
    ticket = await gov.guard.admit("tenant-a", None, None, RequestEstimate(10, 10))
    await gov.guard.settle(ticket, Usage(10, 10, 20), cost, provider="gpt", model="gpt-4o")


async def test_thresholds_alert_once_by_email_webhook_and_event(
    store: StateStore, smtp: tuple[Inbox, int], hooks: Hooks
) -> None:
    inbox, port = smtp
    # A second replica on the same state (same Redis prefix, or the same in-process store).
    if isinstance(store, RedisStateStore):
        other_store: StateStore = RedisStateStore.from_url(REDIS_URL, store.prefix)
    else:
        other_store = store
    bus = EventBus()
    events: list[BudgetAlertEvent] = []
    bus.subscribe("budget.alert", events.append)
    replicas = [Governance(s, settings=_settings(port), bus=bus) for s in (store, other_store)]
    for gov in replicas:
        gov.set_budget(
            "tenant-a",
            daily=50.0,
            monthly=1000.0,
            alert_emails=["admin@tenant-a.com"],
            alert_webhook=hooks.url,
            enforce_hard_limit=False,
        )
    try:
        # 10 + 20 -> 60% (50% crossed); +15 -> 90% (80%); +10 -> 110% (100%; soft: still admitted).
        for i, cost in enumerate([10.0, 20.0, 15.0, 10.0, 1.0, 1.0]):
            await _spend(replicas[i % 2], cost)
        for gov in replicas:
            await gov.alerts.drain(10)
    finally:
        for gov in replicas:
            await gov.alerts.aclose()
        if other_store is not store:
            await other_store.aclose()
    alerts = [msgspec.json.decode(body, type=BudgetAlert) for _, body in hooks.received]
    assert sorted((a.period, a.threshold) for a in alerts) == [("daily", 0.5), ("daily", 0.8), ("daily", 1.0)]
    assert [a.spent for a in sorted(alerts, key=lambda a: a.threshold)] == [30.0, 45.0, 55.0]
    for headers, body in hooks.received:
        assert verify(SECRET, headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER])
        assert not verify("wrong", headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER])
    subjects = sorted(str(m["Subject"]) for m in inbox.messages)
    assert len(subjects) == 3
    assert all(m["To"] == "admin@tenant-a.com" for m in inbox.messages)
    assert any("reached 80% of its daily budget" in s for s in subjects)
    assert len(events) == 3


async def test_a_hard_budget_refusal_alerts_once_per_period(store: StateStore, hooks: Hooks) -> None:
    gov = Governance(store, settings=GovernanceSettings(webhook_secret=SecretStr(SECRET)))
    gov.set_budget("tenant-a", daily=1.0, alert_webhook=hooks.url, enforce_hard_limit=True, thresholds=[2.0])
    await _spend(gov, 0.99)
    for _ in range(3):
        ticket_estimate = RequestEstimate(10, 10, max_cost=0.5)
        with pytest.raises(Exception, match="cannot cover this request"):
            await gov.guard.admit("tenant-a", None, None, ticket_estimate)
    await gov.alerts.aclose()
    (alert,) = [msgspec.json.decode(body, type=BudgetAlert) for _, body in hooks.received]
    assert alert.kind == "refused"
    assert alert.spent == pytest.approx(0.99)


async def test_webhooks_are_retried_with_backoff(hooks: Hooks) -> None:
    hooks.fail_first = 2
    channel = WebhookChannel(SecretStr(SECRET), attempts=3, backoff=0.01)
    alert = BudgetAlert(
        kind="threshold",
        tenant="t",
        key_id=None,
        scope="tenant:t:daily",
        period="daily",
        period_id="2025-01-01",
        threshold=0.5,
        limit=10,
        spent=5,
        percent_used=50,
        hard=False,
        at=0,
    )
    try:
        await channel.send(alert, (hooks.url,))
        assert len(hooks.received) == 1
        hooks.fail_first = 5
        with pytest.raises(WebhookFailed, match="HTTP 503"):
            await channel.send(alert, (hooks.url,))
    finally:
        await channel.aclose()


async def test_soft_alerts_without_smtp_still_publish() -> None:
    bus = EventBus()
    seen: list[BudgetAlertEvent] = []
    bus.subscribe(BudgetAlertEvent, seen.append)
    gov = Governance(MemoryStateStore("t:"), bus=bus)
    gov.set_budget("tenant-a", monthly=10, alertEmails=["ops@example.com"], thresholds=[0.5])
    await _spend(gov, 6)
    await gov.alerts.drain(5)
    await gov.alerts.aclose()
    assert [e.alert.threshold for e in seen] == [0.5]
    assert seen[0].alert.period == "monthly"


async def test_a_settlement_answered_later_by_redis_still_raises_its_alert(store: StateStore) -> None:
    """On Redis the answer leaves before the commit's reply; the alert that reply carries still goes out."""
    bus = EventBus()
    seen: list[BudgetAlertEvent] = []
    bus.subscribe(BudgetAlertEvent, seen.append)
    gov = Governance(store, bus=bus)
    gov.set_budget("tenant-a", daily=10, thresholds=[0.5])
    try:
        await _spend(gov, 1)  # opens the pipe's connection on Redis
        ticket = await gov.guard.admit("tenant-a", None, None, RequestEstimate(10, 10))
        settlement = await gov.guard.settle(ticket, Usage(10, 10, 20), 6.0, provider="gpt", model="gpt-4o")
        assert settlement.cost == pytest.approx(6.0)
        if isinstance(store, RedisStateStore):
            assert settlement.alerts == ()  # not known yet when the answer left
        else:
            assert [a.threshold for a in settlement.alerts] == [0.5]
        status = await gov.get_budget_status("tenant-a")  # reads wait for the unanswered commit
        assert status.periods[0].spent == pytest.approx(7.0)
        await gov.alerts.drain(5)
        assert [e.alert.threshold for e in seen] == [0.5]
        assert seen[0].alert.spent == pytest.approx(7.0)
    finally:
        await gov.alerts.aclose()
