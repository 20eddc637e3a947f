"""What a budget alert says, the event it is published as, and the channel interface."""

from __future__ import annotations

from typing import ClassVar, Literal, Protocol

import msgspec

from podium.events import Event

AlertKind = Literal["threshold", "refused"]


class BudgetAlert(msgspec.Struct, frozen=True, kw_only=True):
    """A budget crossed an alert threshold, or a hard budget refused a request.

    Attributes:
        kind: ``threshold`` (spend reached ``threshold`` of the limit) or ``refused`` (a hard budget
            refused a request; sent once per period).
        tenant: The tenant.
        key_id: The API key, for a per-key budget.
        scope: ``tenant:<tenant>:<period>`` or ``key:<key id>:<period>``.
        period: ``daily`` or ``monthly``.
        period_id: ``2025-01-31`` or ``2025-01``.
        threshold: The fraction of the limit crossed (1.0 for ``refused``).
        limit: The period's limit in US dollars.
        spent: The period's spend when the alert was raised, US dollars.
        percent_used: ``spent`` as a percentage of ``limit``.
        hard: Whether the budget refuses requests.
        at: When it happened (seconds since the epoch).
    """

    kind: AlertKind
    tenant: str
    key_id: str | None
    scope: str
    period: str
    period_id: str
    threshold: float
    limit: float
    spent: float
    percent_used: float
    hard: bool
    at: float

    def summary(self) -> str:
        """One line for humans (email subjects, logs)."""
        who = f"API key {self.key_id} of tenant {self.tenant}" if self.key_id else f"tenant {self.tenant}"
        if self.kind == "refused":
            return (
                f"podium: {self.period} budget of {who} refused a request "
                f"(${self.spent:.2f} of ${self.limit:.2f} spent)"
            )
        return (
            f"podium: {who} reached {self.threshold:.0%} of its {self.period} budget "
            f"(${self.spent:.2f} of ${self.limit:.2f})"
        )


class BudgetAlertEvent(Event, frozen=True, kw_only=True):
    """Published on the event bus for every budget alert (``budget.alert``)."""

    name: ClassVar[str] = "budget.alert"
    alert: BudgetAlert


class AlertChannel(Protocol):
    """Somewhere alerts are delivered (a webhook, email, ...)."""

    name: ClassVar[str]

    async def send(self, alert: BudgetAlert, recipients: tuple[str, ...]) -> None:
        """Deliver ``alert`` to ``recipients`` (URLs, addresses); raise when it finally failed."""
        ...
