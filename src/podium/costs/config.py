"""The ``governance`` settings section: state keys, reservations, prices and alert delivery."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic.alias_generators import to_camel

from podium.costs.alerts.email import SmtpSettings
from podium.costs.pricing import PriceOverride


class GovernanceSettings(BaseModel):
    """How limits, budgets, costs and alerts behave (camelCase keys accepted).

    Attributes:
        key_prefix: Prefix of every state key (one per deployment sharing a Redis).
        default_max_tokens: Output tokens reserved for requests without ``max_tokens``.
        slot_ttl: Seconds after which a concurrency slot of a request that never finished is freed.
        local_provider_types: Provider types that cost nothing unless given prices.
        prices: Prices per provider name (US dollars per million tokens), for custom and local models.
        smtp: The mail server for alert emails (None: emails are not sent).
        webhook_secret: Signs alert webhooks (``X-Podium-Signature``).
        webhook_attempts: Tries per webhook before giving up (exponential backoff between them).
    """

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        alias_generator=to_camel,
        frozen=True,
        hide_input_in_errors=True,
    )

    key_prefix: str = Field(default="podium:", min_length=1)
    default_max_tokens: int = Field(default=4096, ge=1)
    slot_ttl: float = Field(default=600.0, gt=0)
    local_provider_types: tuple[str, ...] = ("ollama",)
    prices: dict[str, PriceOverride] = Field(default_factory=dict)
    smtp: SmtpSettings | None = None
    webhook_secret: SecretStr | None = None
    webhook_attempts: int = Field(default=4, ge=1, le=10)
