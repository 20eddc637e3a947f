"""Budget alerts as signed JSON POSTs, retried with exponential backoff.

The body is the alert as JSON. With a signing secret, ``X-Podium-Signature: sha256=<hex>`` carries
``HMAC-SHA256(secret, "<X-Podium-Timestamp>.<body>")``; receivers recompute it and reject old
timestamps to stop replays.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from typing import TYPE_CHECKING, ClassVar

import msgspec
from pydantic import SecretStr

from podium.costs.alerts.base import BudgetAlert

if TYPE_CHECKING:
    import aiohttp

SIGNATURE_HEADER = "X-Podium-Signature"
TIMESTAMP_HEADER = "X-Podium-Timestamp"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """Whether ``signature`` is valid for ``body`` and ``timestamp`` (constant-time comparison)."""
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


class WebhookFailed(Exception):
    """Every attempt to deliver a webhook failed."""


class WebhookChannel:
    """POSTs alerts to webhook URLs.

    Args:
        secret: Signing secret (None: unsigned).
        attempts: Tries per URL before giving up.
        backoff: Seconds before the second try; doubled for each further try.
        timeout: Seconds per try.
    """

    name: ClassVar[str] = "webhook"

    def __init__(
        self,
        secret: SecretStr | None = None,
        *,
        attempts: int = 4,
        backoff: float = 0.5,
        timeout: float = 10.0,
    ) -> None:
        self._secret = secret
        self._attempts = max(1, attempts)
        self._backoff = backoff
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def send(self, alert: BudgetAlert, recipients: tuple[str, ...]) -> None:
        """POST the alert to each URL, retrying 5xx, 429 and connection failures.

        Raises:
            WebhookFailed: a URL refused the alert (4xx) or every try failed.
        """
        body = msgspec.json.encode(alert)
        for url in recipients:
            await self._post(url, body)

    async def _post(self, url: str, body: bytes) -> None:
        # aiohttp loads on the first alert, not with the gateway: it weighs about 160 ms of start-up.
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout))
        last = ""
        for attempt in range(self._attempts):
            if attempt:
                await asyncio.sleep(self._backoff * 2 ** (attempt - 1))
            timestamp = str(int(time.time()))
            headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: timestamp}
            if self._secret is not None:
                headers[SIGNATURE_HEADER] = sign(self._secret.get_secret_value(), timestamp, body)
            try:
                async with self._session.post(url, data=body, headers=headers) as response:
                    if response.status < 300:
                        return
                    last = f"HTTP {response.status}"
                    if response.status < 500 and response.status != 429:
                        break  # the receiver rejects this alert; retrying will not change its mind
            except (aiohttp.ClientError, TimeoutError) as exc:
                last = f"{type(exc).__name__}: {exc}"
        raise WebhookFailed(f"webhook {url.split('?')[0]} failed: {last}")

    async def aclose(self) -> None:
        """Close pooled connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None
