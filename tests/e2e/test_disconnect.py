"""A client that goes away mid-stream makes podium close its upstream stream at once."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web

from tests.server.live import gateway_over, token


async def test_client_disconnect_closes_the_upstream_stream() -> None:
    upstream_gone = asyncio.Event()

    async def slow_stream(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        chunk = b'data: {"id":"c","model":"m","choices":[{"index":0,"delta":{"content":"w "}}]}\n\n'
        try:
            for _ in range(600):  # a minute of words unless someone hangs up
                await resp.write(chunk)
                await asyncio.sleep(0.1)
        except (ConnectionResetError, asyncio.CancelledError):
            upstream_gone.set()
            raise
        return resp

    async with gateway_over(slow_stream, provider="slow") as (_, url):
        body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": True}
        headers = {"authorization": f"Bearer {token('user', 'acme')}"}
        async with aiohttp.ClientSession() as s:
            r = await s.post(f"{url}/v1/chat/completions", json=body, headers=headers)
            assert r.status == 200
            assert (await r.content.readuntil(b"\n\n")).startswith(b"data: ")
            r.close()  # hang up mid-stream
        await asyncio.wait_for(upstream_gone.wait(), timeout=5)
