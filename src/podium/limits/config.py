"""Rate-limit configuration: the seed's limit names, camelCase or snake_case, per scope and target."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

LimitScope = Literal["tenant", "provider", "key"]
SCOPES: tuple[LimitScope, ...] = ("tenant", "provider", "key")

_WINDOWS = {"second": 1.0, "minute": 60.0, "hour": 3600.0}


@dataclass(frozen=True, slots=True)
class BucketRule:
    """One token bucket derived from a limit: ``capacity`` per ``window`` seconds.

    Attributes:
        name: The limit's snake_case name (``requests_per_minute``).
        unit: ``requests`` or ``tokens``.
        capacity: The limit (also the largest burst).
        rate: Refill per second.
    """

    name: str
    unit: Literal["requests", "tokens"]
    capacity: float
    rate: float


class RateLimitConfig(BaseModel):
    """Limits for one tenant, provider or API key; unset limits do not apply.

    ``max_wait`` is how long a request may wait for capacity before it is refused (0: refuse at once).
    Keys are accepted as ``requestsPerSecond`` or ``requests_per_second``.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, alias_generator=to_camel, frozen=True)

    requests_per_second: float | None = Field(default=None, gt=0)
    requests_per_minute: float | None = Field(default=None, gt=0)
    requests_per_hour: float | None = Field(default=None, gt=0)
    tokens_per_second: float | None = Field(default=None, gt=0)
    tokens_per_minute: float | None = Field(default=None, gt=0)
    tokens_per_hour: float | None = Field(default=None, gt=0)
    concurrent_requests: int | None = Field(default=None, ge=1)
    max_wait: float = Field(default=0.0, ge=0, le=300)

    @model_validator(mode="after")
    def _some(self) -> Self:
        if not self.rules() and self.concurrent_requests is None:
            names = [to_camel(n) for n in type(self).model_fields if n != "max_wait"]
            raise ValueError(f"set at least one limit: {', '.join(names)}")
        return self

    def rules(self) -> list[BucketRule]:
        """One bucket per limit that is set."""
        out = []
        for unit in ("requests", "tokens"):
            for window, seconds in _WINDOWS.items():
                name = f"{unit}_per_{window}"
                limit = getattr(self, name)
                if limit is not None:
                    out.append(BucketRule(name, unit, float(limit), float(limit) / seconds))
        return out
