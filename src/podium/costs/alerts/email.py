"""Budget alerts by email over SMTP (aiosmtplib)."""

from __future__ import annotations

from email.message import EmailMessage
from typing import ClassVar

import msgspec
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic.alias_generators import to_camel

from podium.costs.alerts.base import BudgetAlert


class SmtpSettings(BaseModel):
    """How to reach the mail server (camelCase accepted; ``from`` is the sender address).

    Attributes:
        host: SMTP server.
        port: 587 for STARTTLS, 465 for implicit TLS, 25 for plain relays.
        from_address: The sender, written ``from`` in configuration.
        username: Login, when the server needs one.
        password: Password for ``username``.
        starttls: Upgrade the connection with STARTTLS (needed by most providers on port 587).
        use_tls: Connect with TLS from the start (port 465).
        timeout: Seconds per SMTP operation.
    """

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        alias_generator=to_camel,
        frozen=True,
        hide_input_in_errors=True,
    )

    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    from_address: str = Field(alias="from", min_length=3)
    username: str | None = None
    password: SecretStr | None = None
    starttls: bool = True
    use_tls: bool = False
    timeout: float = Field(default=30.0, gt=0)


class EmailChannel:
    """Sends alerts as plain-text emails.

    Args:
        settings: The SMTP server and sender.
    """

    name: ClassVar[str] = "email"

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    def message(self, alert: BudgetAlert, recipients: tuple[str, ...]) -> EmailMessage:
        """The email for ``alert``: the summary as subject, the details and the JSON in the body."""
        msg = EmailMessage()
        msg["From"] = self.settings.from_address
        msg["To"] = ", ".join(recipients)
        msg["Subject"] = alert.summary()
        details = msgspec.json.format(msgspec.json.encode(alert), indent=2).decode()
        msg.set_content(f"{alert.summary()}\n\nDetails:\n{details}\n")
        return msg

    async def send(self, alert: BudgetAlert, recipients: tuple[str, ...]) -> None:
        """Send one email to every recipient.

        Raises:
            aiosmtplib.SMTPException: the server refused or could not be reached.
        """
        if not recipients:
            return
        s = self.settings
        import aiosmtplib  # only processes that send alert emails load it

        await aiosmtplib.send(
            self.message(alert, recipients),
            hostname=s.host,
            port=s.port,
            username=s.username,
            password=s.password.get_secret_value() if s.password is not None else None,
            start_tls=s.starttls and not s.use_tls,
            use_tls=s.use_tls,
            timeout=s.timeout,
        )
