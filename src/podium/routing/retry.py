"""Retry policy: how many rounds over the candidates, and how long to wait between rounds."""

from __future__ import annotations

import random

from pydantic import BaseModel, ConfigDict, Field


class RetryPolicy(BaseModel):
    """When and how long to retry after every candidate failed.

    A request first tries each candidate once in routing order (failover). If all failed with retryable
    errors, it waits (exponential backoff with full jitter, at least what a provider asked for with
    Retry-After) and tries those again, up to ``max_retries`` more rounds.

    Attributes:
        max_retries: Extra rounds after the first.
        backoff_base: Seconds of the first backoff ceiling; doubles every round.
        backoff_max: Upper bound of any backoff.
        max_retry_after: A provider asking to wait longer than this is not retried in this request.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_retries: int = Field(default=2, ge=0, le=10)
    backoff_base: float = Field(default=0.25, ge=0)
    backoff_max: float = Field(default=8.0, ge=0)
    max_retry_after: float = Field(default=10.0, ge=0)

    def backoff(self, round_no: int, rng: random.Random) -> float:
        """Full-jitter backoff before retry round ``round_no`` (1-based)."""
        ceiling = min(self.backoff_max, self.backoff_base * (2 ** (round_no - 1)))
        return rng.uniform(0, ceiling)
