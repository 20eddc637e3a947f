"""Delivers budget alerts off the request path: event bus, audit log, webhook and email.

Deduplication happens before an alert gets here (the state store's threshold flags make exactly one
replica raise each alert once per threshold and period); this module only delivers, in background
tasks, so a slow SMTP server never delays a response.
"""

from __future__ import annotations

import asyncio
import logging

from podium.costs.alerts.base import BudgetAlert, BudgetAlertEvent
from podium.costs.alerts.email import EmailChannel
from podium.costs.alerts.webhook import WebhookChannel
from podium.events import EventBus
from podium.storage.audit import cost_event
from podium.storage.writer import RecordWriter

logger = logging.getLogger(__name__)


class Alerts:
    """Sends each alert to the budget's webhook and emails, the event bus and the audit log.

    Args:
        webhook: The webhook channel (None: webhooks are not sent).
        email: The email channel (None: emails are not sent; configure SMTP to enable them).
        default_webhook: Used for budgets without their own ``alert_webhook`` (``AI_COST_ALERT_WEBHOOK``).
        writer: Where the ``budget.alert`` audit record goes.
        bus: Where the ``budget.alert`` event is published.
    """

    def __init__(
        self,
        *,
        webhook: WebhookChannel | None = None,
        email: EmailChannel | None = None,
        default_webhook: str | None = None,
        writer: RecordWriter | None = None,
        bus: EventBus | None = None,
    ) -> None:
        self.webhook = webhook if webhook is not None else WebhookChannel()
        self.email = email
        self.default_webhook = default_webhook
        self.writer = writer
        self.bus = bus
        self.failures = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def dispatch(self, alert: BudgetAlert, webhook: str | None, emails: tuple[str, ...]) -> None:
        """Deliver ``alert`` in the background (never raises, never waits)."""
        if self.writer is not None:
            action = "budget.alert" if alert.kind == "threshold" else "budget.exceeded"
            self.writer.submit(
                cost_event(
                    action,
                    tenant=alert.tenant,
                    target=alert.scope,
                    details={
                        "period_id": alert.period_id,
                        "threshold": alert.threshold,
                        "limit": alert.limit,
                        "spent": alert.spent,
                        "hard": alert.hard,
                    },
                )
            )
        task = asyncio.get_running_loop().create_task(
            self._deliver(alert, webhook or self.default_webhook, emails)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, alert: BudgetAlert, webhook: str | None, emails: tuple[str, ...]) -> None:
        logger.warning("%s", alert.summary())
        jobs = []
        if webhook is not None:
            jobs.append(self.webhook.send(alert, (webhook,)))
        if emails and self.email is not None:
            jobs.append(self.email.send(alert, emails))
        elif emails:
            logger.warning(
                "budget alert emails for tenant %r not sent: no SMTP server configured", alert.tenant
            )
        if self.bus is not None:
            jobs.append(self.bus.publish(BudgetAlertEvent(alert=alert)))
        for result in await asyncio.gather(*jobs, return_exceptions=True):
            if isinstance(result, BaseException):
                self.failures += 1
                logger.error("budget alert for %s not delivered: %s", alert.scope, result)

    async def drain(self, timeout: float | None = None) -> None:
        """Wait until alerts being delivered are done (or ``timeout`` passes)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    async def aclose(self, timeout: float = 10.0) -> None:
        """Finish deliveries in flight, then close the webhook client."""
        await self.drain(timeout)
        for task in self._tasks:
            task.cancel()
        await self.webhook.aclose()
