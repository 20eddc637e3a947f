"""Added latency and CPU per request of the podium gateway in front of a near-free fake upstream.

Usage::

    .venv/bin/python benchmarks/overhead.py [--requests 3000] [--stream]

It starts, as separate processes, a fake OpenAI upstream (aiohttp, canned answer) and podium
(``create_app`` under uvicorn with httptools and uvloop, auth by a fixed API key, one provider pointing at
the upstream), then sends requests one at a time over a keep-alive connection: first straight to the
upstream, then through podium. It prints p50/p90/p99 of both, the added p50, and podium's CPU time per
request (utime + stime of its process from /proc, divided by the requests served).

For the shared cross-gateway harness, start the gateway alone with ``--serve-only`` (upstream URL from
``--upstream``) and point ``/work/shared/bench/run.sh`` at it (see that README).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import Any

KEY = "sk-bench-dummy-key"
BODY = json.dumps(
    {
        "model": "fake-gpt",
        "max_tokens": 64,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Say hello in one short sentence."},
        ],
    }
).encode()
ANSWER = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "fake-gpt",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello! How can I help you today?"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 20, "completion_tokens": 9, "total_tokens": 29},
    }
).encode()
_HEAD = b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"fake-gpt","choices":['
STREAM = (
    b"".join(
        _HEAD + b'{"index":0,"delta":{"content":"w%d "},"finish_reason":null}]}\n\n' % i for i in range(18)
    )
    + _HEAD
    + b'{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    + _HEAD
    + b'],"usage":{"prompt_tokens":20,"completion_tokens":18,"total_tokens":38}}\n\n'
    + b"data: [DONE]\n\n"
)


def run_upstream(port: int) -> None:
    """A fake OpenAI chat endpoint answering canned bytes (JSON, or SSE when the body streams)."""
    from aiohttp import web

    async def chat(request: web.Request) -> web.Response:
        body = await request.read()
        if b'"stream":true' in body.replace(b" ", b""):
            return web.Response(body=STREAM, content_type="text/event-stream")
        return web.Response(body=ANSWER, content_type="application/json")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def run_gateway(port: int, upstream: str, workers: int = 1) -> None:
    """Podium with one OpenAI provider at ``upstream`` (model ``fake-gpt``), key ``sk-bench-dummy-key``."""
    import asyncio

    import uvicorn

    from podium.auth.principal import Principal
    from podium.errors import AuthError
    from podium.orchestrator import Orchestrator
    from podium.server import create_app

    admin = Principal(subject="bench", tenant="default", role="user", method="api_key")

    class FixedKey:
        async def authenticate(self, headers: Mapping[str, str]) -> Principal:
            if headers.get("authorization") != f"Bearer {KEY}":
                raise AuthError("bad key")
            return admin

    orch = Orchestrator()
    asyncio.run(
        orch.create_provider(
            type="openai",
            name="fake",
            base_url=upstream,
            api_key=KEY,
            default_model="fake-gpt",
            models=["fake-gpt"],
        )
    )
    app = create_app(orch, authenticator=FixedKey())
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        http="httptools",
        loop="uvloop",
        log_level="warning",
        access_log=False,
        workers=workers,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on port {port}")


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measure(port: int, n: int, stream: bool) -> list[float]:
    body = BODY if not stream else BODY[:-1] + b', "stream": true, "stream_options": {"include_usage": true}}'
    conn = http.client.HTTPConnection("127.0.0.1", port)
    headers = {"content-type": "application/json", "authorization": f"Bearer {KEY}"}
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        conn.request("POST", "/v1/chat/completions", body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        out.append((time.perf_counter() - t0) * 1000)
        if resp.status != 200 or (stream and not data.endswith(b"data: [DONE]\n\n")):
            raise RuntimeError(f"bad answer {resp.status}: {data[:200]!r}")
    conn.close()
    return out


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    """Parse arguments, start the processes, measure, print, stop."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--stream", action="store_true", help="measure streamed requests (20 SSE events)")
    ap.add_argument("--serve-only", action="store_true", help="only run the gateway (for the shared harness)")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--upstream", default="http://127.0.0.1:18080/v1")
    ap.add_argument("--role", choices=["upstream", "gateway"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.role == "upstream":
        run_upstream(args.port)
        return
    if args.role == "gateway" or args.serve_only:
        run_gateway(args.port, args.upstream, args.workers)
        return

    up_port, gw_port = _free_port(), _free_port()
    me = [sys.executable, os.path.abspath(__file__)]
    procs = [subprocess.Popen([*me, "--role", "upstream", "--port", str(up_port)])]
    try:
        _wait(up_port)
        upstream = f"http://127.0.0.1:{up_port}/v1"
        procs.append(
            subprocess.Popen([*me, "--role", "gateway", "--port", str(gw_port), "--upstream", upstream])
        )
        _wait(gw_port)
        _measure(up_port, args.warmup, args.stream)
        direct = _measure(up_port, args.requests, args.stream)
        _measure(gw_port, args.warmup, args.stream)
        cpu0 = _cpu_seconds(procs[1].pid)
        via = _measure(gw_port, args.requests, args.stream)
        cpu = _cpu_seconds(procs[1].pid) - cpu0
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=15)
    report: dict[str, Any] = {
        "mode": "stream" if args.stream else "json",
        "requests": args.requests,
        "direct_ms": {q: round(_pct(direct, v), 3) for q, v in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))},
        "podium_ms": {q: round(_pct(via, v), 3) for q, v in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))},
        "added_p50_ms": round(statistics.median(via) - statistics.median(direct), 3),
        "podium_cpu_us_per_request": round(cpu / args.requests * 1e6, 1),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
