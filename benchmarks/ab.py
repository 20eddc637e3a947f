"""Two podium source trees side by side, one client alternating its requests between them.

On this VM the host's speed changes between runs and within them (the harness's calibration has read
42 and 82 ms minutes apart), so two harness runs made one after the other can differ by more than a
change does. Here both gateways run at once, each request of the client goes to A then B (B then A
on odd rounds), and each gateway's CPU per request is read from /proc over the same minutes: what
slows the host slows both.

    python benchmarks/ab.py OLD_SRC [NEW_SRC] [--mode full|bare|minimal] [--scenario ns|st] [-n 3000]
    python benchmarks/ab.py src src --mode bare --new-mode minimal   # one tree, two configurations

``OLD_SRC``/``NEW_SRC`` are ``src`` directories (a ``git worktree`` of the old commit gives one;
``NEW_SRC`` defaults to this checkout's). Starts the shared harness's nginx fake upstream on
``UPSTREAM_PORT`` (18092), one ``podium serve`` per tree with ``PYTHONPATH`` set to it, each on its
own configuration and database (``podium.cli.bench``'s, as the harness uses), then prints per side:
CPU per request, first-byte and whole-response p50/p90 (ms). One keep-alive connection per side,
sequential requests (concurrency 1); ``-c N`` runs N such clients at once.

``AB_PIN=1`` puts both gateways on CPU 0 and this client and nginx's master on CPU 1 once they are
up. Unpinned, on 2 vCPUs, the client's wake-up can queue behind a gateway's CPU burst, which shows
in first-byte times (a gateway that writes its first event and then works for 0.3 ms without a
system call delays the client that reads it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from podium.cli.bench import _BODY, _STREAM_BODY, MODES, _cpu_seconds, _governed, _wait_ready

ROOT = Path(__file__).resolve().parent.parent
PODIUM = ROOT / ".venv" / "bin" / "podium"
HARNESS = Path(os.environ.get("HARNESS", "/work/shared/bench"))


@dataclass
class Side:
    """One gateway under test and what was measured of it."""

    name: str
    src: Path
    port: int
    key: str = ""
    proc: subprocess.Popen[bytes] | None = None
    samples: list[tuple[float, float]] = field(default_factory=list)
    cpu0: float = 0.0
    cpu: float = 0.0
    preload: Path | None = None  # a directory put ahead of ``src`` on PYTHONPATH (a sitecustomize)


def start_upstream(work: Path, port: int) -> subprocess.Popen[bytes]:
    """The shared harness's nginx fake upstream (canned JSON and a 20-chunk SSE stream)."""
    (work / "nginx" / "logs").mkdir(parents=True)
    (work / "nginx" / "tmp").mkdir()
    conf = (HARNESS / "upstream" / "nginx.conf.template").read_text()
    conf = conf.replace("@LISTEN@", f"127.0.0.1:{port}").replace(
        "@ECHO_MODULE@", "/usr/lib/nginx/modules/ngx_http_echo_module.so"
    )
    (work / "nginx" / "nginx.conf").write_text(conf)
    nginx = work / "nginx"
    return subprocess.Popen(
        ["nginx", "-p", str(nginx), "-e", str(nginx / "logs/error.log"), "-c", str(nginx / "nginx.conf")]
    )


def start_side(side: Side, mode: str, upstream: str, work: Path) -> None:
    """Write the side's configuration, create its database (and key), start ``podium serve``."""
    path = [str(side.preload)] if side.preload is not None else []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*path, str(side.src)])}
    wd = work / side.name
    wd.mkdir()
    script = (
        "import json, sys; from pathlib import Path; from podium.cli.bench import _config; "
        "print(json.dumps(_config(sys.argv[1], sys.argv[2], Path(sys.argv[3]), 1, 1)))"
    )
    cfg = subprocess.run(
        [sys.executable, "-c", script, mode, upstream, str(wd)], env=env, check=True, capture_output=True
    ).stdout
    (wd / "config.yaml").write_bytes(cfg)
    if not _governed(mode):
        subprocess.run(
            [PODIUM, "keys", "list", "--config", wd / "config.yaml"], env=env, check=True, capture_output=True
        )
    else:
        out = subprocess.run(
            [PODIUM, "keys", "create", "--tenant", "default", "--quiet", "--config", wd / "config.yaml"],
            env=env,
            check=True,
            capture_output=True,
        )
        side.key = out.stdout.decode().strip().splitlines()[-1]
    with open(wd / "podium.log", "wb") as log:
        side.proc = subprocess.Popen(
            [
                PODIUM,
                "serve",
                "--config",
                wd / "config.yaml",
                "--port",
                str(side.port),
                "--log-level",
                "warning",
            ],
            env=env,
            cwd=wd,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


async def one(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[float, float]:
    """One request on a kept-alive connection: (ms to the first body byte, ms to the end)."""
    t0 = time.perf_counter()
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"status: {head[:200]!r}")
    first = 0.0
    lower = head.lower()
    if b"transfer-encoding: chunked" in lower:
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            await reader.readexactly(size + 2)
            first = first or time.perf_counter()
            if size == 0:
                break
    else:
        length = int(lower.split(b"content-length:")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        first = time.perf_counter()
    return (first - t0) * 1e3, (time.perf_counter() - t0) * 1e3


def request_bytes(side: Side, stream: bool) -> bytes:
    """The harness's request (podium bench's body), with the side's key."""
    body = json.dumps(_STREAM_BODY if stream else _BODY).encode()
    auth = f"authorization: Bearer {side.key}\r\n".encode() if side.key else b""
    return (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: ab\r\ncontent-type: application/json\r\n"
        + auth
        + f"content-length: {len(body)}\r\n\r\n".encode()
        + body
    )


async def drive(sides: list[Side], n: int, stream: bool, warmup: int, concurrency: int = 1) -> None:
    """Warm both up, then ``n`` alternating rounds; CPU is read around the measured rounds only.

    With ``concurrency`` N, N clients each hold one connection per side and alternate between the
    sides as one client does; the ``n`` rounds are shared among them.
    """

    async def client(rounds: int, measured: bool) -> None:
        conns = [await asyncio.open_connection("127.0.0.1", s.port) for s in sides]
        order = list(range(len(sides)))
        for i in range(rounds):
            for k in order if i % 2 == 0 else order[::-1]:
                sample = await one(*conns[k], reqs[k])
                if measured:
                    sides[k].samples.append(sample)
        for _, w in conns:
            w.close()

    reqs = [request_bytes(s, stream) for s in sides]
    await client(warmup, measured=False)
    for s in sides:
        assert s.proc is not None
        s.cpu0 = _cpu_seconds(s.proc.pid)
    shares = [n // concurrency + (1 if c < n % concurrency else 0) for c in range(concurrency)]
    await asyncio.gather(*(client(rounds, measured=True) for rounds in shares))
    for s in sides:
        assert s.proc is not None
        s.cpu = _cpu_seconds(s.proc.pid) - s.cpu0


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def main() -> None:
    """Parse the arguments, run both sides, print the comparison."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old", type=Path, help="the old tree's src directory")
    ap.add_argument("new", type=Path, nargs="?", default=ROOT / "src", help="the new tree's src directory")
    ap.add_argument("--mode", choices=MODES, default="full")
    ap.add_argument("--new-mode", choices=MODES, help="the new side's mode (default: --mode)")
    ap.add_argument("--scenario", choices=["ns", "st"], default="st")
    ap.add_argument("-n", type=int, default=3000, help="measured requests per side")
    ap.add_argument("-c", "--concurrency", type=int, default=1, help="clients, each alternating")
    ap.add_argument("--warmup", type=int, default=300)
    args = ap.parse_args()
    up_port = int(os.environ.get("UPSTREAM_PORT", "18092"))
    with tempfile.TemporaryDirectory(prefix="podium-ab-") as tmp:
        work = Path(tmp)
        nginx = start_upstream(work, up_port)
        sides = [Side("old", args.old.resolve(), 18411), Side("new", args.new.resolve(), 18412)]
        try:
            for s, mode in zip(sides, (args.mode, args.new_mode or args.mode), strict=True):
                start_side(s, mode, f"http://127.0.0.1:{up_port}/v1", work)
            for s in sides:
                assert s.proc is not None
                auth = {"authorization": f"Bearer {s.key}"} if s.key else {}
                _wait_ready(f"http://127.0.0.1:{s.port}/v1/models", auth, s.proc, 60)
            if os.environ.get("AB_PIN"):  # gateways on CPU 0, this client and nginx on CPU 1
                for s in sides:
                    assert s.proc is not None
                    os.sched_setaffinity(s.proc.pid, {0})
                os.sched_setaffinity(0, {1})
                os.sched_setaffinity(nginx.pid, {1})
            asyncio.run(drive(sides, args.n, args.scenario == "st", args.warmup, args.concurrency))
        finally:
            for s in sides:
                if s.proc is not None:
                    s.proc.terminate()
                    s.proc.wait(timeout=30)
            nginx.terminate()
            nginx.wait()
    modes = args.mode if args.new_mode in (None, args.mode) else f"{args.mode} (old), {args.new_mode} (new)"
    print(f"{modes} {args.scenario}, {args.n} requests per side, alternating, concurrency {args.concurrency}")
    for s in sides:
        first = [x[0] for x in s.samples]
        whole = [x[1] for x in s.samples]
        print(
            f"  {s.name}: CPU {s.cpu / args.n * 1e6:.0f} us/request; first byte p50 {pct(first, 50):.3f} "
            f"p90 {pct(first, 90):.3f} ms; whole p50 {pct(whole, 50):.3f} p90 {pct(whole, 90):.3f} ms"
        )
    old, new = sides
    ratio = pct([x[1] for x in new.samples], 50) / pct([x[1] for x in old.samples], 50)
    print(f"  new/old: CPU {new.cpu / old.cpu:.3f}, whole p50 {ratio:.3f}")


if __name__ == "__main__":
    main()
