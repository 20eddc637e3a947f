"""``OneWriteHttpToolsProtocol``: uvicorn's httptools protocol, sending a response's head with its body.

uvicorn writes the status line and headers to the socket when the app sends ``http.response.start``,
and the body with the next message: two ``write`` system calls per answer. On loopback each write
delivers the data to the reader at once and, when the reader sleeps in ``epoll_wait``, wakes it; on a
VM that wake-up is the costliest part of the call. ``perf record`` on ``podium serve`` at concurrency 1
put 18.7 % of its CPU under ``sock_def_readable``'s wake-up inside ``write``. Holding the head back
until the first body message and writing both at once halves those writes for a JSON answer (and for
a stream's head and first chunk). Measured side by side (``AB_PIN=1 benchmarks/ab.py``, full,
concurrency 1, 4,000 requests per side, eight runs in both orders): a median of 7 % less gateway CPU
per request, single runs scattering by about ±8 % (``benchmarks/RESULTS.md``, eleventh round).

A stream's later body messages are held too, until the event loop's current turn ends (or the
response ends, whichever comes first), and what one turn produced goes out in one write. A stream
whose upstream delivered several reads' worth at once (a fast model, or the benchmark's fake
upstream, whose whole 22-event stream arrives in one read) sent its rest, its ``[DONE]`` event and
the chunked body's terminator as three writes; now it is one. The first body message still leaves at
once with the head (the time to the first token), and a stream that waits on its upstream between
chunks sends each chunk before it waits, as before: holding costs a chunk at most the rest of the
loop's turn. Past :data:`HOLD_LIMIT` bytes the held ones are written at once: a body produced without
ever waiting would otherwise be held whole, out of reach of the transport's flow control.

Everything else is uvicorn's own code: the held bytes are exactly what it wrote, in its order; the
cycle only lends uvicorn a stand-in transport that collects them while it writes. A connection uvicorn
closes (``Connection: close``) gets the held bytes first, and a response's held bytes are all written
when it completes, before the connection's next response can start.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

#: Bytes of a response's later messages held at most before they are written (64 KiB: ten times a
#: whole chat stream of the benchmark, and the transport's default high-water mark).
HOLD_LIMIT = 64 * 1024


class _Collect:
    """Stands in for the transport while uvicorn writes: keeps what it writes, passes the rest through."""

    __slots__ = ("_real", "chunks")

    def __init__(self, real: Any, chunks: list[bytes]) -> None:
        self._real = real
        self.chunks = chunks

    def write(self, data: bytes) -> None:
        self.chunks.append(data)

    def close(self) -> None:
        self.flush()
        self._real.close()

    def flush(self) -> None:
        if self.chunks and not self._real.is_closing():
            self._real.write(b"".join(self.chunks))
        self.chunks.clear()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class _OneWriteCycle(RequestResponseCycle):
    """uvicorn's request-response cycle with the response head held until the first body message."""

    _head: bytes | None = None
    _held: list[bytes] | None = None  # later body bytes waiting for the end of the loop's turn

    async def send(self, message: Any) -> None:  # ASGISendEvent
        """Send one ASGI message; the head waits for the first body message and goes out with it.

        Later body messages are held until the loop's current turn ends or the response completes.
        """
        head = self._head
        if head is None and self.response_started:
            await self._send_held(message)
            return
        self._head = None
        real = self.transport
        collect = _Collect(real, [] if head is None else [head])
        self.transport = collect  # type: ignore[assignment]  # a stand-in with the methods uvicorn calls
        try:
            await super().send(message)
        finally:
            self.transport = real
        if head is None and self.response_started and message["type"] == "http.response.start":
            self._head = b"".join(collect.chunks)  # held for the body
            return
        collect.flush()

    async def _send_held(self, message: Any) -> None:
        """A later message of a started response: its bytes join those held in this turn of the loop."""
        if self.flow.write_paused and not self.disconnected:
            # Waited for here, not inside uvicorn's send: the stand-in transport must not stay in
            # place while this task sleeps.
            await self.flow.drain()
        held = self._held
        if held is None:
            held = self._held = []
            asyncio.get_running_loop().call_soon(self._write_held)
        real = self.transport
        self.transport = _Collect(real, held)  # type: ignore[assignment]  # as in send
        try:
            await super().send(message)
        finally:
            self.transport = real
        if self.response_complete or sum(map(len, held)) > HOLD_LIMIT:
            self._write_held()  # all of it, before the connection's next response

    def _write_held(self) -> None:
        """Write what this response's later messages held (nothing when it went already)."""
        held, self._held = self._held, None
        if held and not self.transport.is_closing():
            self.transport.write(b"".join(held))


class OneWriteHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools HTTP/1.1 protocol whose answers go out in one write where they can.

    Pass the class as uvicorn's ``http`` setting (``podium serve`` does).
    """

    def on_headers_complete(self) -> None:
        """Start the request as uvicorn does, with the one-write cycle (its task has not run yet)."""
        super().on_headers_complete()
        if type(self.cycle) is RequestResponseCycle:
            self.cycle.__class__ = _OneWriteCycle
