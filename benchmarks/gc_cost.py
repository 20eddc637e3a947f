"""What Python's cycle collector costs a served gateway under load.

The collector's work lands on whichever line happens to allocate when a collection starts, so no
profile shows it as a function. Here ``podium serve`` runs with ``gc.callbacks`` timing every
collection, wrk drives it, and the collections and their time per request are read over the
measured seconds only.

    python benchmarks/gc_cost.py [--src SRC] [--mode full|bare|full-redis] [--scenario ns|st]
                                 [-c 64] [-d 10] [--threshold N]

- Starts the shared harness's nginx fake upstream on ``UPSTREAM_PORT`` (18093).
- Starts one ``podium serve`` from ``SRC``, a ``src`` directory (default: this checkout's), on its
  own configuration and database. The configuration is ``podium.cli.bench``'s; full-redis reads
  ``REDIS_URL``.
- Runs wrk as ``podium bench`` does (its script and the harness's request, JSON or a stream): 3 s of
  warm-up, then the measured run.
- Prints the requests, requests/s, CPU per request, collections per generation, collector time per
  request and RSS.

``--threshold N`` makes the gateway use N as its young-generation threshold while serving, in place
of what ``podium serve`` sets (the measuring thread applies it every 0.2 s), to compare values.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ab import ROOT, Side, start_side, start_upstream

from podium.cli.bench import _BODY, _LUA, _STREAM_BODY, _cpu_seconds, _rss_mib, _wait_ready, _wrk

# Loaded by the gateway before podium: times every collection and writes the running totals to
# GC_COST_OUT every 0.2 s (a daemon thread, so reading them needs no signal and no request).
_SITECUSTOMIZE = """
import gc, json, os, threading, time
_acc = [[0, 0.0], [0, 0.0], [0, 0.0]]
_t0 = [0.0]
def _timed(phase, info):
    if phase == "start":
        _t0[0] = time.perf_counter()
    else:
        _acc[info["generation"]][0] += 1
        _acc[info["generation"]][1] += time.perf_counter() - _t0[0]
gc.callbacks.append(_timed)
def _report():
    out, threshold = os.environ["GC_COST_OUT"], os.environ.get("GC_COST_THRESHOLD")
    while True:
        time.sleep(0.2)
        if threshold:
            gc.set_threshold(int(threshold), *gc.get_threshold()[1:])
        with open(out + ".tmp", "w") as f:
            json.dump({"acc": _acc, "threshold": gc.get_threshold()}, f)
        os.replace(out + ".tmp", out)
threading.Thread(target=_report, daemon=True).start()
"""


def _load(side: Side, script: Path, body: bytes, concurrency: int, seconds: int) -> dict[str, Any]:
    url = f"http://127.0.0.1:{side.port}/v1/chat/completions"
    found = _wrk(url, body, side.key or None, concurrency, seconds, script)
    if found["errors"]:
        raise SystemExit(f"wrk saw {found['errors']} errors")
    return found


def _read(path: Path) -> dict[str, list[list[float]]]:
    time.sleep(0.5)  # past the next report
    found: dict[str, list[list[float]]] = json.loads(path.read_text())
    return found


def main() -> None:
    """Parse the arguments, run the gateway under wrk, print the collector's share."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", type=Path, default=ROOT / "src", help="the src directory to serve")
    ap.add_argument("--mode", choices=["full", "bare", "full-redis"], default="full")
    ap.add_argument("--scenario", choices=["ns", "st"], default="ns")
    ap.add_argument("-c", "--concurrency", type=int, default=64)
    ap.add_argument("-d", "--duration", type=int, default=10, help="measured seconds")
    ap.add_argument("--threshold", type=int, help="young-generation threshold while serving")
    args = ap.parse_args()
    up_port = int(os.environ.get("UPSTREAM_PORT", "18093"))
    body = json.dumps(_STREAM_BODY if args.scenario == "st" else _BODY).encode()
    with tempfile.TemporaryDirectory(prefix="podium-gc-") as tmp:
        work = Path(tmp)
        (work / "preload").mkdir()
        (work / "preload" / "sitecustomize.py").write_text(_SITECUSTOMIZE)
        script = work / "chat.lua"
        script.write_text(_LUA)
        stats = work / "gc.json"
        os.environ["GC_COST_OUT"] = str(stats)
        if args.threshold:
            os.environ["GC_COST_THRESHOLD"] = str(args.threshold)
        nginx = start_upstream(work, up_port)
        side = Side("gateway", args.src.resolve(), 18413, preload=work / "preload")
        try:
            start_side(side, args.mode, f"http://127.0.0.1:{up_port}/v1", work)
            assert side.proc is not None
            auth = {"authorization": f"Bearer {side.key}"} if side.key else {}
            _wait_ready(f"http://127.0.0.1:{side.port}/v1/models", auth, side.proc, 60)
            _load(side, script, body, args.concurrency, 3)
            before, cpu0 = _read(stats), _cpu_seconds(side.proc.pid)
            run = _load(side, script, body, args.concurrency, args.duration)
            cpu = _cpu_seconds(side.proc.pid) - cpu0
            after, rss = _read(stats), _rss_mib(side.proc.pid)
        finally:
            if side.proc is not None:
                side.proc.terminate()
                side.proc.wait(timeout=30)
            nginx.terminate()
            nginx.wait()
    n = run["requests"]
    counts = [int(after["acc"][g][0] - before["acc"][g][0]) for g in range(3)]
    seconds = sum(after["acc"][g][1] - before["acc"][g][1] for g in range(3))
    print(
        f"{args.mode} {args.scenario}, c={args.concurrency}, {args.duration:g} s, young threshold "
        f"{after['threshold'][0]}: {n} requests, {n / run['seconds']:.0f} req/s, "
        f"CPU {cpu / n * 1e6:.1f} us/request; collections (young, middle, full) "
        f"{counts[0]}, {counts[1]}, {counts[2]}; collector {seconds / n * 1e6:.1f} us/request; "
        f"RSS {rss:.1f} MiB"
    )


if __name__ == "__main__":
    main()
