"""Streams through the gateway: what arrived together leaves together, and nothing waits for more.

Every layer passes a stream on as batches (what one upstream read brought). Over HTTP/1.1 each
write of the gateway is one chunk of the chunked transfer encoding, so a raw client can count them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import msgspec
import pytest
from aiohttp import web

from tests.server.live import Handler, gateway_over, token

WORDS = [f"w{i} " for i in range(20)]


def _event(delta: dict[str, object], finish: str | None = None) -> bytes:
    chunk = {"id": "c1", "model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + msgspec.json.encode(chunk) + b"\n\n"


def _closing() -> bytes:
    usage = {
        "id": "c1",
        "model": "m",
        "choices": [],
        "usage": {"prompt_tokens": 3, "completion_tokens": 20, "total_tokens": 23},
    }
    return _event({}, "stop") + b"data: " + msgspec.json.encode(usage) + b"\n\n" + b"data: [DONE]\n\n"


@asynccontextmanager
async def _streamed(upstream: Handler, body: dict[str, object]) -> AsyncIterator[asyncio.StreamReader]:
    """POST ``body`` (a stream request) through a gateway whose upstream answers with ``upstream``.

    The gateway has governance on, so every layer (limits, budget, ledger) is in the path. Yields the
    connection's reader once a 200 chunked head has been read.
    """
    async with gateway_over(upstream) as (orch, url):
        orch.set_rate_limit("acme", {"requestsPerMinute": 1000, "tokensPerMinute": 1_000_000})
        orch.set_budget("acme", daily=100.0)
        reader, writer = await _post(url, body)
        try:
            yield reader
        finally:
            writer.close()


async def _post(url: str, body: dict[str, object]) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    data = msgspec.json.encode(body)
    writer.write(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\n"
        + f"authorization: Bearer {token('user', 'acme')}\r\ncontent-length: {len(data)}\r\n\r\n".encode()
        + data
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert b"transfer-encoding: chunked" in head.lower()
    return reader, writer


async def _http_chunks(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    """The chunks of a chunked-encoded body, one per write of the server."""
    while True:
        size = int((await reader.readuntil(b"\r\n")).strip(), 16)
        data = await reader.readexactly(size + 2)
        if size == 0:
            return
        yield data[:-2]


def _texts(body: bytes) -> list[str]:
    out = []
    for event in body.split(b"\n\n"):
        if event.startswith(b"data: {"):
            for choice in msgspec.json.decode(event[6:])["choices"]:
                out.append(choice["delta"].get("content") or "")
    return [t for t in out if t]


async def test_a_stream_that_arrives_in_one_read_leaves_in_a_few_writes() -> None:
    async def whole(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b"".join(_event({"content": w}) for w in WORDS) + _closing())  # one write
        await resp.write_eof()
        return resp

    body: dict[str, object] = {"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": True}
    async with _streamed(whole, body) as reader:
        writes = [c async for c in _http_chunks(reader)]
    stream = b"".join(writes)
    assert _texts(stream) == WORDS
    assert stream.endswith(b"data: [DONE]\n\n")
    # 23 events (20 words, the finish, the usage chunk, [DONE]): the first word leaves alone, as soon
    # as it is parsed (time to first token); the rest of the read in one write, then [DONE]. Not one
    # write per event.
    assert _texts(writes[0]) == WORDS[:1]
    assert len(writes) <= 3, [w[:40] for w in writes]


@pytest.mark.parametrize("include_usage", [False, True])
async def test_each_chunk_leaves_before_the_upstream_sends_the_next(include_usage: bool) -> None:
    """The upstream sends each word only once the client has read the one before: a layer that held
    a chunk back until more arrived would stall this stream."""
    read: list[asyncio.Event] = [asyncio.Event() for _ in WORDS]

    async def lockstep(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        for i, word in enumerate(WORDS):
            if i:
                await asyncio.wait_for(read[i - 1].wait(), timeout=5)
            await resp.write(_event({"content": word}))
        await resp.write(_closing())
        await resp.write_eof()
        return resp

    body: dict[str, object] = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "stream": True,
        "stream_options": {"include_usage": include_usage},
    }
    got: list[str] = []
    tail = b""
    async with _streamed(lockstep, body) as reader:
        async for data in _http_chunks(reader):
            got += _texts(data)
            for i in range(len(got)):
                read[i].set()
            tail += data
    assert got == WORDS
    assert tail.endswith(b"data: [DONE]\n\n")
    assert (b'"usage":{"prompt_tokens":3' in tail) is include_usage
