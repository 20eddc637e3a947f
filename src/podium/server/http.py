"""ASGI plumbing: request ids, podium's own time per request, JSON and SSE responses.

``RequestTiming`` is the outermost layer, so every answer (errors and 500s included) carries
``x-request-id``, and ``x-podium-overhead-ms`` = time from receiving the request to sending the
response head, minus the time routes reported as spent waiting on upstream providers.
"""

from __future__ import annotations

import asyncio
import contextlib
import operator
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import msgspec
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from podium._ids import new_id

_ENCODER = msgspec.json.Encoder()
_ENCODE = operator.methodcaller("encode", "latin-1")  # header names and values, as Starlette encodes them


def _incoming_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            # Keep a caller's id only when it is short and printable, so logs stay readable.
            text: str = value.decode("latin-1")
            if 0 < len(text) <= 128 and text.isascii() and text.isprintable():
                return text
            return None
    return None


class RequestTiming:
    """Adds ``x-request-id`` and ``x-podium-overhead-ms`` to every HTTP answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_id(scope) or new_id()
        # [start time, upstream milliseconds]; routes add to the second item.
        timing = [time.perf_counter(), 0.0]
        scope["podium.timing"] = timing
        scope["podium.request_id"] = request_id

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                overhead = (time.perf_counter() - timing[0]) * 1000 - timing[1]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                headers.append((b"x-podium-overhead-ms", f"{max(0.0, overhead):.3f}".encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def request_id(scope: Scope) -> str:
    """The id ``RequestTiming`` gave the request."""
    rid: str = scope.get("podium.request_id") or new_id()
    return rid


class JSONBytes(Response):
    """A JSON answer from already-encoded bytes (or any msgspec-encodable value)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        """Encode with msgspec: structs and dicts alike, in one pass."""
        return content if isinstance(content, bytes) else _ENCODER.encode(content)

    def init_headers(self, headers: Mapping[str, str] | None = None) -> None:
        """Starlette's header list (same names, values and order), built in C-level loops.

        A generation answer carries about eight headers (the provider and the ``x-ratelimit-*`` ones);
        Starlette's own comprehensions over them cost more than encoding the body.
        """
        names: list[str] = []
        raw: list[tuple[bytes, bytes]] = []
        if headers:
            names = [*map(str.lower, headers)]
            raw = [*zip(map(_ENCODE, names), map(_ENCODE, headers.values()), strict=True)]
        if "content-length" not in names and not (self.status_code < 200 or self.status_code in (204, 304)):
            raw.append((b"content-length", b"%d" % len(self.body)))
        kind = self.media_type
        if kind is not None and "content-type" not in names:
            if kind.startswith("text/") and "charset=" not in kind.lower():
                kind += "; charset=" + self.charset
            raw.append((b"content-type", kind.encode("latin-1")))
        self.raw_headers = raw


class SSEResponse(Response):
    """A server-sent-event stream that stops producing when the client goes away.

    The body iterator is consumed in the request's task while another waits for ``http.disconnect``;
    a disconnect cancels the producer, whose ``finally`` blocks close the upstream stream at once
    rather than at the next chunk. The iterator must yield its first piece (empty if need be) without
    waiting on the upstream: the routes wait for a stream's first batch before they answer, and the
    disconnect listener starts once that first piece is sent.
    """

    media_type = "text/event-stream"

    def __init__(
        self, events: AsyncIterator[bytes], headers: dict[str, str] | None = None, status_code: int = 200
    ) -> None:
        self.events = events
        self.status_code = status_code
        self.background = None
        self.init_headers({"cache-control": "no-cache", "x-accel-buffering": "no", **(headers or {})})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Stream the events until they end or the client disconnects.

        The events are written from the request's own task (no second task to start, and the first
        event leaves without a hop through the loop). Once the first event is out, a listener task
        watches for the disconnect and cancels the writing when the client goes away: started any
        earlier, it would delay the first token by a task's creation, while nothing before that
        first event waits on the upstream (the route waited for its first chunk already).
        """
        writer = asyncio.current_task()
        assert writer is not None
        state = {"finished": False, "gone": False}
        listener: asyncio.Future[None] | None = None

        def client_left(listener: asyncio.Future[None]) -> None:
            # Runs a loop iteration after the listener ended: the writing may have ended meanwhile.
            if not listener.cancelled() and not state["finished"]:
                state["gone"] = True
                writer.cancel()

        def listen() -> None:
            nonlocal listener
            listener = asyncio.ensure_future(self._wait_disconnect(receive))
            listener.add_done_callback(client_left)

        try:
            await self._produce(send, listen)
        except asyncio.CancelledError:
            if not state["gone"]:
                raise
            writer.uncancel()  # the client hung up: a normal end, not a cancellation of this request
        except OSError:
            pass  # a client that went away mid-write is not an error of ours
        finally:
            state["finished"] = True
            if listener is not None:
                listener.remove_done_callback(client_left)
                if not listener.done():
                    listener.cancel()
                with contextlib.suppress(asyncio.CancelledError, OSError):
                    await listener

    async def _produce(self, send: Send, sent_first: Callable[[], None]) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        first: Callable[[], None] | None = sent_first
        try:
            async for event in self.events:
                await send({"type": "http.response.body", "body": event, "more_body": True})
                if first is not None:
                    first()
                    first = None
        finally:
            aclose = getattr(self.events, "aclose", None)
            if aclose is not None:
                await aclose()
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    @staticmethod
    async def _wait_disconnect(receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
