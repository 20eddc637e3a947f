"""The HTTP protocol ``podium serve`` runs: uvicorn's httptools one, a response's head sent with its body.

A real uvicorn server on loopback with a raw socket client; each connection's transport is wrapped to
count the writes uvicorn makes on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.types import Receive, Scope, Send

from podium.server.protocol import HOLD_LIMIT, OneWriteHttpToolsProtocol
from tests.server.live import serve

writes: list[bytes] = []


class _Counted:
    """The real transport, its writes recorded."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def write(self, data: bytes) -> None:
        writes.append(bytes(data))
        self._real.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class _CountingProtocol(OneWriteHttpToolsProtocol):
    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self.transport = _Counted(transport)  # type: ignore[assignment]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/json":
        body = b'{"ok":true}'
        headers = [(b"content-type", b"application/json"), (b"content-length", b"11")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    elif path == "/stream":
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
        )
        for part in (b"one ", b"two ", b"three"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
            await asyncio.sleep(0.01)
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    elif path == "/burst":  # what one upstream read produces: several events and the end, no wait
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
        )
        for part in (b"first ", b"rest ", b"[DONE]"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    elif path == "/big":  # 256 KiB produced without a single wait
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
        )
        for _ in range(64):
            await send({"type": "http.response.body", "body": b"x" * 4096, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    elif path == "/empty":
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/gone":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5")]})
        await asyncio.sleep(0.3)  # the client hangs up meanwhile
        await send({"type": "http.response.body", "body": b"later"})


@pytest.fixture
async def base() -> AsyncIterator[tuple[str, int]]:
    async with serve(app, http=_CountingProtocol) as url:
        host, port = url.removeprefix("http://").split(":")
        yield host, int(port)


async def exchange(where: tuple[str, int], request: bytes) -> bytes:
    """Send raw requests on one connection and read until the server closes it."""
    reader, writer = await asyncio.open_connection(*where)
    writer.write(request)
    data = await asyncio.wait_for(reader.read(), timeout=10)
    writer.close()
    return data


async def test_a_json_answer_goes_out_in_one_write_unchanged(base: tuple[str, int]) -> None:
    writes.clear()
    data = await exchange(base, b"GET /json HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"content-type: application/json" in head and b"content-length: 11" in head
    assert b"connection: close" in head
    assert body == b'{"ok":true}'
    assert writes == [data]  # head and body in one write, nothing else


async def test_keep_alive_requests_are_each_answered_in_one_write(base: tuple[str, int]) -> None:
    writes.clear()
    one = b"GET /json HTTP/1.1\r\nhost: t\r\n\r\n"
    data = await exchange(base, one + one + b"GET /json HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
    assert data.count(b"HTTP/1.1 200 OK") == 3 and data.count(b'{"ok":true}') == 3
    assert len(writes) == 3 and b"".join(writes) == data


async def test_a_stream_sends_its_head_with_the_first_chunk_then_each_chunk(base: tuple[str, int]) -> None:
    writes.clear()
    data = await exchange(base, b"GET /stream HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head
    assert body == b"4\r\none \r\n4\r\ntwo \r\n5\r\nthree\r\n0\r\n\r\n"
    # Each part leaves before the app waits for the next: head + "one ", "two ", "three", the end.
    assert len(writes) == 4
    assert writes[0].endswith(b"\r\n\r\n4\r\none \r\n")


async def test_a_streams_parts_produced_in_one_turn_of_the_loop_go_out_in_one_write(
    base: tuple[str, int],
) -> None:
    writes.clear()
    data = await exchange(base, b"GET /burst HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
    _, _, body = data.partition(b"\r\n\r\n")
    assert body == b"6\r\nfirst \r\n5\r\nrest \r\n6\r\n[DONE]\r\n0\r\n\r\n"
    # The head with the first part at once (the time to the first token); the rest with the end.
    assert len(writes) == 2 and b"".join(writes) == data
    assert writes[0].endswith(b"\r\n\r\n6\r\nfirst \r\n")


async def test_held_parts_of_one_stream_leave_before_the_next_answer_on_the_connection(
    base: tuple[str, int],
) -> None:
    writes.clear()
    burst = b"GET /burst HTTP/1.1\r\nhost: t\r\n\r\n"
    last = b"GET /json HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n"
    data = await exchange(base, burst + burst + last)
    answers = data.split(b"HTTP/1.1 200 OK\r\n")[1:]
    assert len(answers) == 3
    for answer in answers[:2]:
        assert answer.endswith(b"6\r\nfirst \r\n5\r\nrest \r\n6\r\n[DONE]\r\n0\r\n\r\n")
    assert answers[2].endswith(b'{"ok":true}')
    assert len(writes) == 5 and b"".join(writes) == data


async def test_a_body_produced_without_waiting_is_not_held_whole(base: tuple[str, int]) -> None:
    writes.clear()
    data = await exchange(base, b"GET /big HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
    assert data.endswith(b"0\r\n\r\n") and data.count(b"x" * 4096) == 64
    assert b"".join(writes) == data
    # Written as the held bytes pass the limit (so the transport's flow control sees them), not once.
    assert 3 <= len(writes) <= 6 and max(map(len, writes)) <= HOLD_LIMIT + 4096 + 16


async def test_an_answer_without_a_body_still_sends_its_head(base: tuple[str, int]) -> None:
    writes.clear()
    data = await exchange(base, b"GET /empty HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 204 No Content\r\n") and data.endswith(b"\r\n\r\n")
    assert writes == [data]


async def test_a_client_gone_before_the_body_costs_nothing(base: tuple[str, int]) -> None:
    writes.clear()
    _, writer = await asyncio.open_connection(*base)
    writer.write(b"GET /gone HTTP/1.1\r\nhost: t\r\n\r\n")
    await writer.drain()
    await asyncio.sleep(0.1)
    writer.close()  # before the app sends its body: the held head is never written
    await writer.wait_closed()
    await asyncio.sleep(0.4)
    assert writes == []
    # The server still answers the next client.
    data = await exchange(base, b"GET /json HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
    assert data.endswith(b'{"ok":true}')
