"""``podium bench``: what the gateway adds on top of a near-free upstream, measured end to end.

It starts a fake OpenAI upstream (a canned-answer asyncio server in this process, or an external one
such as the shared harness's nginx with ``--upstream``), then for each mode a real ``podium serve``
process configured with one provider pointing at it, and drives it with closed-loop keep-alive
connections (``wrk`` when installed, else a built-in client) at each concurrency:

- ``ns``: non-streaming chat; ``st``: ``"stream": true`` (20 SSE chunks, latency of the whole stream);
  ``ttfb``: time to the first SSE event (built-in client);
- per scenario: req/s, p50/p90/p99 latency, errors, and podium's CPU per request (utime + stime of its
  process from ``/proc/<pid>/stat`` divided by the requests served);
- per mode: start-up time (spawn to first ``200`` on ``/v1/models``, on a database that already has
  its schema, as on every start but the first), RSS idle and after the load, and the request-log and
  audit records the gateway reported dropped (it should be 0: throughput bought by losing records is
  not throughput).

Modes: ``minimal`` (no auth, no limits or budgets, and ``storage.record_requests`` off: no request log
or audit event per request, as issue 7's bare figures are defined; the cost ledger and metrics stay
on), ``bare`` (no auth, no limits or budgets; the SQLite request log and audit trail stay on),
``full`` (an API key, a tenant rate limit too high to refuse, a daily budget, the SQLite request log,
in-process state), ``full-redis`` (``full`` with ``redis_url``: limits, budgets and the cost ledger in
Redis). ``--footprint`` also starts one with 100 providers over 10 tenants twice, on a new database
(the first start creates the schema) and again on the same one, and reports both start-ups and RSS.
The direct upstream is measured first, so the added latency is ``podium p50 - direct p50``.
``--litellm PATH`` also starts the LiteLLM proxy on the same upstream (``podium.cli._bench_peer``)
and measures it last, in the same run, the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import typer

from podium.cli._bench_peer import find_litellm, start_litellm
from podium.cli._bench_start import start_on_free_port

MODES = ("minimal", "bare", "full", "full-redis")
SCENARIOS = ("ns", "st", "ttfb")
_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")
_BODY = {
    "model": "fake-gpt",
    "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Write one sentence about the sea."},
    ],
    "max_tokens": 64,
    "temperature": 0.2,
}
_STREAM_BODY = {**_BODY, "stream": True, "stream_options": {"include_usage": True}}

# --- the fake upstream ----------------------------------------------------------------------------------

_ANSWER = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1732300000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "The sea is wide and blue.", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 26, "completion_tokens": 8, "total_tokens": 34},
    },
    separators=(",", ":"),
).encode()


def _sse() -> bytes:
    head = '{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1732300000,'
    head += '"model":"gpt-4o-mini-2024-07-18",'
    events = [
        head + '"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}'
    ]
    events += [
        head + f'"choices":[{{"index":0,"delta":{{"content":"word{i} "}},"finish_reason":null}}]}}'
        for i in range(18)
    ]
    events.append(head + '"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}')
    events.append(
        head + '"choices":[],"usage":{"prompt_tokens":26,"completion_tokens":18,"total_tokens":44}}'
    )
    return "".join(f"data: {e}\n\n" for e in [*events, "[DONE]"]).encode()


_STREAM = _sse()


def _http(status: str, ctype: bytes, body: bytes) -> bytes:
    return b"HTTP/1.1 %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n\r\n%s" % (
        status.encode(),
        ctype,
        len(body),
        body,
    )


_JSON_REPLY = _http("200 OK", b"application/json", _ANSWER)
_STREAM_REPLY = _http("200 OK", b"text/event-stream", _STREAM)
_OK_REPLY = _http("200 OK", b"text/plain", b"ok")


class _Upstream(asyncio.Protocol):
    """A minimal HTTP/1.1 keep-alive server answering canned chat completions (JSON or SSE)."""

    def __init__(self) -> None:
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].lower()
            length = 0
            at = head.find(b"content-length:")
            if at >= 0:
                length = int(head[at + 15 : head.find(b"\r\n", at) if head.find(b"\r\n", at) > 0 else None])
            if len(self.buf) < end + 4 + length:
                return
            body = self.buf[end + 4 : end + 4 + length]
            self.buf = self.buf[end + 4 + length :]
            assert self.transport is not None
            if head.startswith(b"get"):
                self.transport.write(_OK_REPLY)
            elif b'"stream":true' in body.replace(b" ", b""):
                self.transport.write(_STREAM_REPLY)
            else:
                self.transport.write(_JSON_REPLY)


def _run_upstream(port: int) -> None:
    """Serve the fake upstream until killed (runs in its own process)."""

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(_Upstream, "127.0.0.1", port, backlog=1024)
        async with server:
            await server.serve_forever()

    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())


# --- processes ------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * _PAGE / 2**20


def _tree(pid: int) -> list[int]:
    """``pid`` and its live descendants (``--workers N`` runs the workers as children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
    return out


def _tree_sum(pid: int, read: Callable[[int], float]) -> float:
    """``read`` summed over ``pid`` and its descendants (``_cpu_seconds`` or ``_rss_mib``)."""
    total = 0.0
    for p in _tree(pid):
        with contextlib.suppress(OSError):  # a worker may exit between listing and reading
            total += read(p)
    return total


def _get(url: str, headers: dict[str, str], body: bytes | None = None) -> tuple[int, bytes]:
    import http.client

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=10)
    try:
        conn.request("POST" if body is not None else "GET", parts.path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _wait_ready(url: str, headers: dict[str, str], proc: subprocess.Popen[bytes], limit: float) -> float:
    """Poll ``url`` until it answers 200; the seconds since ``proc`` was spawned (by the caller)."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit:
        if proc.poll() is not None:
            raise RuntimeError(f"the process exited with {proc.returncode} before it was ready")
        with contextlib.suppress(OSError):
            if _get(url, headers)[0] == 200:
                return time.perf_counter() - t0
        time.sleep(0.01)
    raise RuntimeError(f"{url} did not answer 200 within {limit:.0f} s")


_DROPPED = re.compile(r"records dropped because the queue was full \(max \d+\); (\d+) in total")
_LOST = re.compile(r"(\d+) records lost at shutdown")


def _records_dropped(log: Path) -> int:
    """Request-log and audit records the gateway reported dropped (its log, read after it stopped)."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return 0
    dropped = max((int(n) for n in _DROPPED.findall(text)), default=0)
    return dropped + sum(int(n) for n in _LOST.findall(text))


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class _Gateway:
    proc: subprocess.Popen[bytes]
    url: str
    key: str | None
    startup_s: float
    workdir: Path


def _governed(mode: str) -> bool:
    """Whether a mode authenticates with an API key and sets limits and budgets (the ``full`` ones)."""
    return mode.startswith("full")


def _config(mode: str, upstream: str, workdir: Path, providers: int, tenants: int) -> dict[str, Any]:
    entries = [
        {
            "type": "openai",
            "name": "fake" if providers == 1 else f"fake{i}",
            "tenant": "default" if tenants == 1 else f"t{i % tenants}",
            "base_url": upstream,
            "api_key": "sk-upstream-dummy",
            "default_model": "fake-gpt",
            "models": ["fake-gpt"],
        }
        for i in range(providers)
    ]
    governed = _governed(mode)
    cfg: dict[str, Any] = {
        "framework": {"data_dir": str(workdir), "log_level": "WARNING"},
        "providers": entries,
        # A 32-byte key, as `openssl rand -hex 32` gives and the docs recommend. 32 hex digits (16
        # bytes) would be read as a passphrase, stretched with scrypt at every start (0.13 s here).
        "config_store": {"directory": str(workdir / "config"), "encryption_key": secrets.token_hex(32)},
        "auth": {"enabled": governed},
    }
    if mode == "minimal":
        cfg["storage"] = {"record_requests": False, "store_history": False}
    if governed:
        cfg["limits"] = [
            {
                "scope": "tenant",
                "target": "default",
                "limits": {"requests_per_second": 1e6, "tokens_per_minute": 1e12},
            }
        ]
        cfg["budgets"] = [{"tenant": "default", "daily": 1e6, "monthly": 1e7}]
    if mode == "full-redis":
        cfg["redis_url"] = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
        cfg["governance"] = {"key_prefix": f"podium-bench-{uuid.uuid4().hex[:8]}:"}
    return cfg


def _podium() -> list[str]:
    found = Path(sys.executable).with_name("podium")
    return [str(found)] if found.exists() else [shutil.which("podium") or "podium"]


def _workdir(mode: str, upstream: str, providers: int, tenants: int) -> Path:
    """A new directory holding a gateway's ``config.yaml`` (its database is created beside it)."""
    workdir = Path(tempfile.mkdtemp(prefix=f"podium-bench-{mode}-"))
    (workdir / "config.yaml").write_text(
        json.dumps(_config(mode, upstream, workdir, providers, tenants), indent=1)
    )
    return workdir


def _prepare_database(mode: str, cfg_path: Path) -> str | None:
    """Create the gateway's database schema (and, in a full mode, its API key, which is returned).

    Start-up is then timed as on every start but the very first, which also runs the migrations
    (+0.15 s and +12 MiB here).
    """
    if not _governed(mode):
        subprocess.run(
            [*_podium(), "keys", "list", "--config", str(cfg_path)], capture_output=True, check=True
        )
        return None
    out = subprocess.run(
        [*_podium(), "keys", "create", "--tenant", "default", "--quiet", "--config", str(cfg_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1]


def _start_gateway(
    mode: str,
    upstream: str,
    providers: int = 1,
    tenants: int = 1,
    workers: int = 1,
    workdir: Path | None = None,
) -> _Gateway:
    """Start ``podium serve``; with ``workdir`` (from :func:`_workdir`), on its configuration and database."""
    key = None
    if workdir is None:
        workdir = _workdir(mode, upstream, providers, tenants)
        key = _prepare_database(mode, workdir / "config.yaml")
    cfg_path = workdir / "config.yaml"
    headers = {"authorization": f"Bearer {key}"} if key else {}
    log_path = workdir / "podium.log"

    def launch(port: int) -> subprocess.Popen[bytes]:
        with open(log_path, "wb") as log:  # the child writes to its own copy of the descriptor
            return subprocess.Popen(
                [
                    *_podium(),
                    "serve",
                    "--config",
                    str(cfg_path),
                    "--port",
                    str(port),
                    "--log-level",
                    "warning",
                    "--workers",
                    str(workers),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=workdir,
            )

    def ready(port: int, proc: subprocess.Popen[bytes]) -> None:
        _wait_ready(f"http://127.0.0.1:{port}/v1/models", headers, proc, 60)

    proc, port, startup_s = start_on_free_port(launch, ready, _stop, log_path, _free_port)
    return _Gateway(proc, f"http://127.0.0.1:{port}", key, startup_s, workdir)


# --- load -------------------------------------------------------------------------------------------------

_LUA = """
wrk.method = "POST"
wrk.body = os.getenv("PODIUM_BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"
local key = os.getenv("PODIUM_BENCH_KEY")
if key and #key > 0 then wrk.headers["Authorization"] = "Bearer " .. key end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK_JSON {"requests":%d,"duration_us":%d,"errors":%d,'
    .. '"p50_us":%d,"p90_us":%d,"p99_us":%d}\\n', summary.requests, summary.duration,
    e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
"""


@dataclass
class Result:
    """One scenario's figures (latencies in milliseconds)."""

    target: str
    scenario: str
    concurrency: int
    requests: int = 0
    rps: float = 0.0
    p50: float = 0.0
    p90: float = 0.0
    p99: float = 0.0
    errors: int = 0
    cpu_us_per_request: float | None = None
    added_p50: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _wrk(url: str, body: bytes, key: str | None, c: int, seconds: float, script: Path) -> dict[str, Any]:
    env = {**os.environ, "PODIUM_BENCH_BODY": body.decode(), "PODIUM_BENCH_KEY": key or ""}
    cmd = [
        "wrk",
        f"-t{min(c, 2)}",
        f"-c{c}",
        f"-d{max(1, round(seconds))}s",  # wrk takes whole seconds only
        "--latency",
        "--timeout",
        "30s",
        "-s",
        str(script),
    ]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, env=env, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("WRK_JSON "))
    data: dict[str, Any] = json.loads(line[9:])
    return {
        "requests": data["requests"],
        "seconds": data["duration_us"] / 1e6,
        "errors": data["errors"],
        "lat": [data["p50_us"] / 1000, data["p90_us"] / 1000, data["p99_us"] / 1000],
    }


async def _client(
    url: str, body: bytes, key: str | None, c: int, seconds: float, ttfb: bool
) -> dict[str, Any]:
    """Closed loop over ``c`` keep-alive connections; latency to the end (or first byte) of each answer."""
    parts = urlsplit(url)
    auth = f"authorization: Bearer {key}\r\n" if key else ""
    request = (
        f"POST {parts.path} HTTP/1.1\r\nhost: {parts.netloc}\r\ncontent-type: application/json\r\n"
        f"{auth}content-length: {len(body)}\r\n\r\n"
    ).encode() + body
    lat: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def one() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                first = None
                ok = head.startswith(b"HTTP/1.1 200")
                lower = head.lower()
                if b"transfer-encoding: chunked" in lower:
                    data = b""
                    while True:
                        size = int((await reader.readuntil(b"\r\n")).strip(), 16)
                        chunk = await reader.readexactly(size + 2)
                        if first is None:
                            first = time.perf_counter()
                        if size == 0:
                            break
                        data += chunk[:-2]
                    ok = ok and data.endswith(b"data: [DONE]\n\n")
                else:
                    at = lower.find(b"content-length:")
                    length = int(lower[at + 15 : lower.find(b"\r\n", at)]) if at >= 0 else 0
                    await reader.readexactly(length)
                    first = time.perf_counter()
                end = time.perf_counter()
                if ok:
                    lat.append(((first if ttfb and first else end) - t0) * 1000)
                else:
                    errors += 1
        finally:
            writer.close()

    t_start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(c)))
    elapsed = time.perf_counter() - t_start
    lat.sort()
    pick = [lat[min(len(lat) - 1, int(q * len(lat)))] if lat else 0.0 for q in (0.5, 0.9, 0.99)]
    return {"requests": len(lat) + errors, "seconds": elapsed, "errors": errors, "lat": pick}


def _load(
    endpoint: str,
    body: bytes,
    key: str | None,
    c: int,
    seconds: float,
    script: Path | None,
    ttfb: bool = False,
) -> dict[str, Any]:
    """Drive ``endpoint`` at concurrency ``c``: wrk when there is a script (not for ttfb), else ours."""
    if not ttfb and script is not None:
        return _wrk(endpoint, body, key, c, seconds, script)
    return asyncio.run(_client(endpoint, body, key, c, seconds, ttfb))


def _scenario(
    target: str,
    url: str,
    key: str | None,
    pid: int | None,
    scenario: str,
    c: int,
    seconds: float,
    script: Path | None,
) -> Result:
    body = json.dumps(_STREAM_BODY if scenario != "ns" else _BODY, separators=(",", ":")).encode()
    endpoint = f"{url}/v1/chat/completions"

    def drive(duration: float) -> dict[str, Any]:
        return _load(endpoint, body, key, c, duration, script, ttfb=scenario == "ttfb")

    drive(min(2.0, seconds))  # warm-up at the same concurrency, not recorded
    cpu0 = _tree_sum(pid, _cpu_seconds) if pid else 0.0
    got = drive(seconds)
    cpu = _tree_sum(pid, _cpu_seconds) - cpu0 if pid else None
    done = got["requests"]
    return Result(
        target=target,
        scenario=scenario,
        concurrency=c,
        requests=done,
        rps=round(done / got["seconds"], 1),
        p50=round(got["lat"][0], 3),
        p90=round(got["lat"][1], 3),
        p99=round(got["lat"][2], 3),
        errors=got["errors"],
        cpu_us_per_request=round(cpu / done * 1e6, 1) if cpu is not None and done else None,
    )


# --- the command ------------------------------------------------------------------------------------------


def _table(results: list[Result]) -> str:
    rows = [
        "| target | scenario | c | req/s | p50 ms | p90 ms | p99 ms | added p50 ms | errors | CPU us/req |"
    ]
    rows.append("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    for r in results:
        added = "" if r.added_p50 is None else f"{r.added_p50:.3f}"
        cpu = "" if r.cpu_us_per_request is None else f"{r.cpu_us_per_request:.0f}"
        rows.append(
            f"| {r.target} | {r.scenario} | {r.concurrency} | {r.rps:.0f} | {r.p50:.3f} | {r.p90:.3f} | "
            f"{r.p99:.3f} | {added} | {r.errors} | {cpu} |"
        )
    return "\n".join(rows)


def _soak(gw: _Gateway, seconds: float, script: Path | None, c: int = 64) -> dict[str, Any]:
    """Non-streaming load at ``c`` for ``seconds``: RSS every tenth of the run, errors, throughput.

    RSS growth is measured from the first sample, taken after a warm-up at the same concurrency, so
    that caches and pools filled by the first requests do not count as growth.
    """
    endpoint = f"{gw.url}/v1/chat/completions"
    body = json.dumps(_BODY, separators=(",", ":")).encode()

    def drive(duration: float) -> dict[str, Any]:
        return _load(endpoint, body, gw.key, c, duration, script)

    drive(min(5.0, seconds))
    pid = gw.proc.pid
    rss = [_tree_sum(pid, _rss_mib)]
    requests = errors = 0
    slice_s = max(1, round(seconds / 10))
    t0 = time.perf_counter()
    while (left := seconds - (time.perf_counter() - t0)) >= 0.5:
        got = drive(max(1, min(slice_s, round(left))))
        requests += got["requests"]
        errors += got["errors"]
        rss.append(_tree_sum(pid, _rss_mib))
    elapsed = time.perf_counter() - t0
    return {"seconds": round(elapsed, 1), "concurrency": c, "requests": requests, "errors": errors,
            "rps": round(requests / elapsed, 1), "rss_mib": [round(r, 1) for r in rss],
            "rss_growth_pct": round(100 * (rss[-1] - rss[0]) / rss[0], 2)}  # fmt: skip


def _footprint(upstream: str) -> dict[str, Any]:
    workdir = _workdir("bare", upstream, 100, 10)
    try:
        first = _start_gateway("bare", upstream, workdir=workdir)  # a new database: migrations run
        first_rss = _rss_mib(first.proc.pid)
        _stop(first.proc)
        gw = _start_gateway("bare", upstream, workdir=workdir)
        try:
            idle = _rss_mib(gw.proc.pid)
            body = json.dumps({**_BODY, "model": None}).encode()
            failed = 0
            for t in range(10):
                status, _ = _get(
                    f"{gw.url}/v1/chat/completions",
                    {"content-type": "application/json", "x-podium-tenant": f"t{t}"},
                    body,
                )
                failed += status != 200
            return {"providers": 100, "tenants": 10, "first_startup_s": round(first.startup_s, 3),
                    "first_rss_idle_mib": round(first_rss, 1), "startup_s": round(gw.startup_s, 3),
                    "errors": failed, "rss_idle_mib": round(idle, 1),
                    "rss_after_mib": round(_rss_mib(gw.proc.pid), 1)}  # fmt: skip
        finally:
            _stop(gw.proc)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run(
    modes: str = typer.Option("minimal,bare,full", help=f"Comma-separated modes: {', '.join(MODES)}."),
    scenarios: str = typer.Option("ns,st,ttfb", help="ns (JSON), st (whole stream), ttfb (first SSE event)."),
    concurrency: str = typer.Option("1,16,64", help="Comma-separated connection counts."),
    duration: float = typer.Option(10.0, min=1, help="Measured seconds per scenario (after a warm-up)."),
    upstream: str | None = typer.Option(
        None, help="An OpenAI-compatible base URL to use as upstream (default: a built-in canned one)."
    ),
    direct: bool = typer.Option(True, help="Measure the upstream alone first (for the added latency)."),
    footprint: bool = typer.Option(
        False, help="Also measure RSS and start-up with 100 providers / 10 tenants."
    ),
    use_wrk: bool = typer.Option(True, "--wrk/--no-wrk", help="Use wrk for ns/st when it is installed."),
    workers: str = typer.Option(
        "1",
        help="Comma-separated worker counts to measure each mode with (e.g. 1,2; use full-redis to share).",
    ),
    soak: float = typer.Option(
        0.0, min=0, help="Also run each gateway this many seconds at concurrency 64 (RSS growth, errors)."
    ),
    output: Path | None = typer.Option(None, "--json", help="Write every figure to this JSON file."),
    litellm: str | None = typer.Option(
        None,
        help="Also measure the LiteLLM proxy in the same run: its executable (a path, or a name on PATH).",
    ),
) -> None:
    """Measure podium's added latency, CPU per request, throughput, memory and start-up time."""
    wanted = [m.strip() for m in modes.split(",") if m.strip()]
    if bad := [m for m in wanted if m not in MODES]:
        raise typer.BadParameter(f"unknown mode(s) {', '.join(bad)}; use {', '.join(MODES)}")
    kinds = [s.strip() for s in scenarios.split(",") if s.strip()]
    if bad := [s for s in kinds if s not in SCENARIOS]:
        raise typer.BadParameter(f"unknown scenario(s) {', '.join(bad)}; use {', '.join(SCENARIOS)}")
    levels = [int(c) for c in concurrency.split(",") if c.strip()]
    counts = [int(w) for w in workers.split(",") if w.strip()]
    if not counts or min(counts) < 1:
        raise typer.BadParameter("workers must be positive counts, e.g. 1,2")
    peer_exe = None
    if litellm is not None:
        try:
            peer_exe = find_litellm(litellm)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--litellm") from exc
    tmp = Path(tempfile.mkdtemp(prefix="podium-bench-"))
    script: Path | None = None
    if use_wrk and shutil.which("wrk"):
        script = tmp / "chat.lua"
        script.write_text(_LUA)
    up_proc = None
    if upstream is None:
        port = _free_port()
        up_proc = subprocess.Popen(
            [sys.executable, "-c", f"from podium.cli.bench import _run_upstream; _run_upstream({port})"]
        )
        upstream = f"http://127.0.0.1:{port}/v1"
        _wait_ready(f"http://127.0.0.1:{port}/health", {}, up_proc, 20)
    base = upstream.rstrip("/").removesuffix("/v1")
    results: list[Result] = []
    gateways: dict[str, Any] = {}
    try:
        if direct:
            for s in kinds:
                for c in levels:
                    results.append(_scenario("direct", base, None, None, s, c, duration, script))
                    typer.echo(_table(results[-1:]).splitlines()[-1], err=True)

        def measure(label: str, url: str, key: str | None, pid: int, info: dict[str, Any]) -> None:
            info["rss_idle_mib"] = round(_tree_sum(pid, _rss_mib), 1)
            for s in kinds:
                for c in levels:
                    r = _scenario(label, url, key, pid, s, c, duration, script)
                    same = [
                        d for d in results if d.target == "direct" and d.scenario == s and d.concurrency == c
                    ]
                    if same:
                        r.added_p50 = round(r.p50 - same[0].p50, 3)
                    results.append(r)
                    typer.echo(_table(results[-1:]).splitlines()[-1], err=True)
            info["rss_after_mib"] = round(_tree_sum(pid, _rss_mib), 1)

        for mode, n in [(m, n) for m in wanted for n in counts]:
            label = mode if n == 1 else f"{mode} w{n}"
            gw = _start_gateway(mode, upstream, workers=n)
            try:
                pid = gw.proc.pid
                info: dict[str, Any] = {"workers": n, "startup_s": round(gw.startup_s, 3)}
                measure(label, gw.url, gw.key, pid, info)
                if soak:
                    info["soak"] = _soak(gw, soak, script)
                    typer.echo(f"{label} soak: {json.dumps(info['soak'])}", err=True)
                gateways[label] = info
            finally:
                _stop(gw.proc)
                if label in gateways:  # a throughput bought by dropping records would not be honest
                    gateways[label]["records_dropped"] = _records_dropped(gw.workdir / "podium.log")
                shutil.rmtree(gw.workdir, ignore_errors=True)
        if peer_exe is not None:
            peer = start_litellm(peer_exe, upstream, str(_BODY["model"]), _free_port, _wait_ready)
            try:
                info = {"workers": 1, "version": peer.version, "startup_s": round(peer.startup_s, 3)}
                measure("litellm", peer.url, None, peer.proc.pid, info)
                gateways["litellm"] = info
            finally:
                _stop(peer.proc)
                shutil.rmtree(peer.workdir, ignore_errors=True)
        report: dict[str, Any] = {"upstream": upstream, "load": "wrk" if script else "built-in client",
                                  "duration_s": duration, "gateways": gateways,
                                  "results": [asdict(r) for r in results]}  # fmt: skip
        if footprint:
            report["footprint"] = _footprint(upstream)
    finally:
        if up_proc is not None:
            _stop(up_proc)
        shutil.rmtree(tmp, ignore_errors=True)
    typer.echo(_table(results))
    typer.echo("")
    for mode, info in gateways.items():
        name = f"litellm {info['version'] or ''}".strip() if mode == "litellm" else mode
        dropped = f", records dropped {info['records_dropped']}" if "records_dropped" in info else ""
        typer.echo(f"{name}: start-up {info['startup_s']} s, RSS idle {info['rss_idle_mib']} MiB, "
                   f"after load {info['rss_after_mib']} MiB{dropped}")  # fmt: skip
        if "soak" in info:
            sk = info["soak"]
            typer.echo(f"{mode} soak: {sk['seconds']} s at c={sk['concurrency']}, {sk['requests']} requests, "
                       f"{sk['errors']} errors, RSS {sk['rss_mib'][0]} -> {sk['rss_mib'][-1]} MiB "
                       f"({sk['rss_growth_pct']:+.2f} %)")  # fmt: skip
    if "footprint" in report:
        typer.echo(f"footprint: {json.dumps(report['footprint'])}")
    if output is not None:
        output.write_text(json.dumps(report, indent=2))
