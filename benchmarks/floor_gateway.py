"""The floor: the least a Python gateway on podium's server stack can cost per request on this host.

A raw ASGI app under uvicorn with podium's own settings (uvloop, its httptools protocol, no access
log, one worker) that forwards ``POST /v1/chat/completions`` to the upstream with podium's HTTP client
and returns the upstream's bytes unchanged: no auth, no parsing, no routing, no governance, no
records. Whatever the shared harness measures for it is what the server and the transport cost before
podium does anything, so it bounds how far podium's own figures can fall on this machine.

    python benchmarks/floor_gateway.py PORT UPSTREAM_BASE_URL
    GW_PID=<pid> /work/shared/bench/run.sh http://127.0.0.1:PORT
"""

from __future__ import annotations

import sys
from typing import Any

import msgspec
import uvicorn

from podium.providers._http import HttpClient
from podium.server.protocol import OneWriteHttpToolsProtocol

_UPSTREAM = sys.argv[2].rstrip("/") if len(sys.argv) > 2 else "http://127.0.0.1:18080/v1"
_client: HttpClient | None = None


async def _body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _start(status: int, kind: bytes) -> dict[str, Any]:
    return {"type": "http.response.start", "status": status, "headers": [(b"content-type", kind)]}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Forward chat completions (streamed or not) byte for byte; answer anything else with 200 ``ok``."""
    global _client
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                auth = {"authorization": "Bearer sk-upstream-dummy"}
                _client = HttpClient(
                    "floor", _UPSTREAM, auth, timeout=60.0, connect_timeout=5.0, max_connections=256
                )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["path"] != "/v1/chat/completions":
        await send(_start(200, b"text/plain"))
        await send({"type": "http.response.body", "body": b"ok"})
        return
    assert _client is not None
    body = msgspec.Raw(await _body(receive))  # sent as is: msgspec writes Raw bytes unchanged
    if b'"stream":true' not in bytes(body).replace(b" ", b""):
        whole = await _client.request("POST", "/chat/completions", body=body)
        kind = whole.headers.get("content-type", "application/json").encode()
        await send(_start(whole.status, kind))
        await send({"type": "http.response.body", "body": whole.body})
        return
    response = await _client.open_stream("/chat/completions", body=body)
    try:
        kind = response.headers.get("content-type", "text/event-stream").encode()
        await send(_start(response.status, kind))
        async for chunk in response.iter_chunks():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    finally:
        response.release()


if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        loop="uvloop",
        http=OneWriteHttpToolsProtocol,  # podium serve's (uvicorn's httptools protocol, one write per answer)
        access_log=False,
        log_level="warning",
        lifespan="on",
    )
