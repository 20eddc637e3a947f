"""Counting requests under way, so shutdown can let them finish before storage closes."""

from __future__ import annotations

import asyncio

from podium.errors import ShuttingDown


class InFlight:
    """A gate requests pass through (``with gate:``): counted while inside, refused once draining began."""

    def __init__(self) -> None:
        self.count = 0
        self.draining = False
        self._idle: asyncio.Event | None = None

    def enter(self) -> None:
        """Count a request in.

        Raises:
            ShuttingDown: draining has begun.
        """
        if self.draining:
            raise ShuttingDown("podium is shutting down and takes no new requests; retry on another instance")
        self.count += 1

    def leave(self) -> None:
        """Count a request out."""
        self.count -= 1
        if self.count == 0 and self._idle is not None:
            self._idle.set()

    def __enter__(self) -> None:
        self.enter()

    def __exit__(self, *exc_info: object) -> None:
        self.leave()

    async def drain(self, timeout: float) -> bool:
        """Refuse new requests and wait up to ``timeout`` seconds for those under way.

        Returns:
            True when every request finished in time.
        """
        self.draining = True
        if self.count == 0:
            return True
        self._idle = asyncio.Event()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True
