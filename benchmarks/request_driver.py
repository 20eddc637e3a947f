"""Drive ``podium serve``'s application in process over raw ASGI, for instruction counts.

No uvicorn and no client in the process: what is counted is podium's own request path (auth,
parsing, governance, routing, the provider adapter's HTTP client, recording, the record writer),
against an upstream in another process. ``benchmarks/instructions.sh`` runs it under callgrind.

    python benchmarks/request_driver.py CONFIG KEY N [--stream]

Runs 300 warm-up requests, then N measured ones, then shuts the app down (draining the writer).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from podium.cli.bench import _BODY, _STREAM_BODY  # the shared harness's request, as podium bench sends it
from podium.cli.serve import build_app
from podium.testing import http_scope


async def one(app: Any, key: bytes, body: bytes) -> None:
    """One POST /v1/chat/completions, read to its end; fails on any status but 200."""
    scope = http_scope(
        "POST",
        "/v1/chat/completions",
        [
            (b"host", b"bench"),
            (b"content-type", b"application/json"),
            (b"authorization", b"Bearer " + key),
            (b"content-length", str(len(body)).encode()),
        ],
    )
    finished = asyncio.Event()
    received = False
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": body, "more_body": False}
        await finished.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])
        elif not message.get("more_body"):
            finished.set()

    await app(scope, receive, send)
    if status != [200]:
        raise SystemExit(f"request failed with status {status}")


async def main(config: str, key: str, n: int, stream: bool) -> None:
    """Warm up, run ``n`` requests, and print the process time per request."""
    body = json.dumps(_STREAM_BODY if stream else _BODY)
    app = build_app(config)
    async with app.router.lifespan_context(app):
        for _ in range(300):
            await one(app, key.encode(), body.encode())
        t0 = time.process_time()
        for _ in range(n):
            await one(app, key.encode(), body.encode())
        per = (time.process_time() - t0) / max(n, 1) * 1e6
    print(f"{per:.0f} us process time per request ({'stream' if stream else 'non-streaming'}, n={n})")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    asyncio.run(main(args[0], args[1], int(args[2]), "--stream" in sys.argv))
