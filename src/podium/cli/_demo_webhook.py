"""The demo's budget-alert receiver: a real aiohttp server on loopback that checks each signature.

It plays the part of the user's own alert endpoint (Slack bridge, pager, ...): podium POSTs signed JSON
to it, and it verifies ``X-Podium-Signature`` the way a receiver should, with the shared secret.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from typing import Any, Self

import msgspec
from aiohttp import web

from podium.costs.alerts import SIGNATURE_HEADER, TIMESTAMP_HEADER, BudgetAlert, verify
from podium.testing import FakeUpstream


@dataclass(frozen=True, slots=True)
class ReceivedAlert:
    """One POST the receiver got: the raw body, the decoded alert and whether its signature verified."""

    body: bytes
    alert: BudgetAlert
    signature: str
    verified: bool

    def pretty_json(self) -> str:
        """The body as indented JSON, as it arrived."""
        return msgspec.json.format(self.body, indent=2).decode()


@dataclass
class AlertReceiver:
    """A webhook endpoint on 127.0.0.1 collecting podium's budget alerts.

    Attributes:
        secret: The signing secret shared with podium (``governance.webhook_secret``).
        received: Every alert received, in arrival order.
    """

    secret: str = field(default_factory=lambda: "whsec_" + secrets.token_urlsafe(24))
    received: list[ReceivedAlert] = field(default_factory=list)
    _server: FakeUpstream = field(default_factory=FakeUpstream)  # a free port: demos run side by side
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self._server.route("POST", "/hooks/budget", self._receive)

    @property
    def url(self) -> str:
        """Where podium should POST (the budget's ``alert_webhook``)."""
        return f"{self._server.url}/hooks/budget"

    async def start(self) -> Self:
        """Listen on a free loopback port."""
        await self._server.start()
        return self

    async def stop(self) -> None:
        """Stop listening."""
        await self._server.stop()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def wait_for(self, count: int, timeout: float) -> bool:
        """Wait until at least ``count`` alerts arrived; False when ``timeout`` passed first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.received) < count:
            left = deadline - loop.time()
            if left <= 0:
                return False
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except TimeoutError:
                return False
        return True

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        signature = request.headers.get(SIGNATURE_HEADER, "")
        timestamp = request.headers.get(TIMESTAMP_HEADER, "")
        verified = bool(signature) and verify(self.secret, timestamp, body, signature)
        try:
            alert = msgspec.json.decode(body, type=BudgetAlert)
        except msgspec.DecodeError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        self.received.append(ReceivedAlert(body, alert, signature, verified))
        self._arrived.set()
        # A real receiver would refuse unsigned or forged alerts; the demo keeps them to show the check.
        return web.Response(status=204)


def alert_row(item: ReceivedAlert) -> dict[str, Any]:
    """The facts of one received alert a reader cares about, for a table row."""
    a = item.alert
    return {
        "kind": a.kind,
        "scope": a.scope,
        "threshold": f"{a.threshold:.0%}" if a.kind == "threshold" else "-",
        "spent": f"${a.spent:.6f}",
        "limit": f"${a.limit:.6f}",
        "used": f"{a.percent_used:.1f}%",
        "signature": "verified" if item.verified else "INVALID",
    }
