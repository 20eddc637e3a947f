"""Python bytecodes executed per request, by function: an exact profile of podium's own request path.

Sampling profilers misplace time around system calls and spread the cycle collector over whatever line
allocated; callgrind counts instructions exactly but cannot name the Python function they belong to.
This counts every bytecode the interpreter executes (``sys.settrace`` with opcode events) over N
requests served in process on uvloop, as ``benchmarks/request_driver.py`` serves them, and prints the
count per request: in total, by module and by function (with calls per request). The counts repeat
from run to run (within a few tenths of a percent: how the record writer splits its batches varies),
so a change that removes work shows as a smaller number whatever the host is doing. They leave out
time spent in C (JSON, hashing, SQLite, the kernel), which callgrind's totals still cover.

    python benchmarks/bytecodes.py CONFIG KEY [N] [--stream] [--top K]

The count includes writing the N requests' records (the record writer is flushed before and after).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))
from request_driver import one  # the same in-process request as the instruction counts

from podium.cli.bench import _BODY, _STREAM_BODY
from podium.cli.serve import build_app

_PREFIXES = (
    (str(Path(__file__).resolve().parents[1] / "src") + "/", ""),
    (str(Path(sys.prefix) / "lib") + "/", "lib:"),
    (str(Path(sys.base_prefix) / "lib") + "/", "std:"),
)


def _where(code: CodeType) -> str:
    name = code.co_filename
    for prefix, short in _PREFIXES:
        if name.startswith(prefix):
            name = short + name[len(prefix) :].replace("python3.11/site-packages/", "")
            break
    return name.replace("python3.11/", "")


class _Counter:
    """A trace function counting calls and executed bytecodes per code object."""

    def __init__(self) -> None:
        self.ops: Counter[CodeType] = Counter()
        self.calls: Counter[CodeType] = Counter()

    def call(self, frame: FrameType, event: str, arg: Any) -> Any:
        self.calls[frame.f_code] += 1
        frame.f_trace_opcodes = True
        frame.f_trace_lines = False
        return self.step

    def step(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event == "opcode":
            self.ops[frame.f_code] += 1
        return self.step


async def _run(config: str, key: bytes, n: int, stream: bool) -> _Counter:
    body = json.dumps(_STREAM_BODY if stream else _BODY).encode()
    app = build_app(config)
    counter = _Counter()
    async with app.router.lifespan_context(app):
        for _ in range(300):
            await one(app, key, body)
        writer = app.state.podium.orchestrator.writer
        await writer.flush()  # the warm-up's records are written before counting starts
        sys.settrace(counter.call)
        try:
            for _ in range(n):
                await one(app, key, body)
            await writer.flush()  # the N requests' records are written inside the count
        finally:
            sys.settrace(None)
    return counter


def main() -> None:
    """Count, then print the totals per request."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("key")
    parser.add_argument("n", nargs="?", type=int, default=500)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    # uvloop, as podium serve runs: the event loop's own work is then C, as it is when serving.
    counted = uvloop.run(_run(args.config, args.key.encode(), args.n, args.stream))
    n = args.n
    kind = "stream" if args.stream else "non-streaming"
    print(f"{sum(counted.ops.values()) / n:.0f} bytecodes per request ({kind}, n={n})")
    modules: Counter[str] = Counter()
    for code, count in counted.ops.items():
        modules[_where(code)] += count
    print("\nby module (bytecodes per request)")
    for where, count in modules.most_common(args.top):
        print(f"{count / n:9.1f}  {where}")
    print("\nby function (bytecodes, calls per request)")
    for code, count in counted.ops.most_common(args.top):
        where = f"{_where(code)}:{code.co_firstlineno} {code.co_name}"
        print(f"{count / n:9.1f} {counted.calls[code] / n:6.2f}  {where}")


if __name__ == "__main__":
    main()
