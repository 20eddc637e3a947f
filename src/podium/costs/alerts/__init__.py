"""Budget alert delivery: webhook (signed JSON), email (SMTP), the event bus and the audit log."""

from podium.costs.alerts.base import AlertChannel, AlertKind, BudgetAlert, BudgetAlertEvent
from podium.costs.alerts.dispatcher import Alerts
from podium.costs.alerts.email import EmailChannel, SmtpSettings
from podium.costs.alerts.webhook import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookChannel,
    WebhookFailed,
    sign,
    verify,
)

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "AlertChannel",
    "AlertKind",
    "Alerts",
    "BudgetAlert",
    "BudgetAlertEvent",
    "EmailChannel",
    "SmtpSettings",
    "WebhookChannel",
    "WebhookFailed",
    "sign",
    "verify",
]
