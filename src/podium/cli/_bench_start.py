"""``start_on_free_port``: start a server process on a free port, and again on another if it was taken.

A port found free (bound to port 0, then released) can be bound by another process before the server
binds it. The server then exits, and its log says "address already in use". ``podium bench`` starts
its gateways and the LiteLLM peer through this one function, so both follow the same rule: the whole
log is searched, as LiteLLM writes kilobytes of traceback after uvicorn's bind error.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

#: What uvicorn logs when the port is taken (any case).
COLLISION = "address already in use"

Process = subprocess.Popen[bytes]


class StartFailed(RuntimeError):
    """The server did not become ready; ``reason`` says why, ``tail`` is the end of its log."""

    def __init__(self, reason: str, tail: str, log_path: Path) -> None:
        super().__init__(f"{reason}; the end of its log ({log_path}):\n{tail}")
        self.reason = reason
        self.tail = tail


def start_on_free_port(
    launch: Callable[[int], Process],
    ready: Callable[[int, Process], object],
    stop: Callable[[Process], object],
    log_path: Path,
    choose_port: Callable[[], int],
    *,
    attempts: int = 3,
) -> tuple[Process, int, float]:
    """Start a server and wait until it is ready, on a new port while its log shows a taken one.

    Args:
        launch: Starts the server on a port, writing its output to ``log_path``.
        ready: Returns once the server on that port answers; raises ``RuntimeError`` if it will not.
        stop: Stops a server that did not become ready.
        log_path: The server's log.
        choose_port: A free port, called once per attempt.
        attempts: Starts at most.

    Returns:
        The process, its port, and the seconds from its start to ready.

    Raises:
        StartFailed: ``ready`` raised ``RuntimeError`` on the last attempt, or without a port collision.
    """
    for attempt in range(attempts):
        port = choose_port()
        t0 = time.perf_counter()
        proc = launch(port)
        try:
            ready(port, proc)
        except RuntimeError as exc:
            stop(proc)
            logged = log_path.read_bytes().decode("utf-8", "replace")
            if COLLISION in logged.lower() and attempt + 1 < attempts:
                continue
            raise StartFailed(str(exc), logged[-2000:].strip(), log_path) from exc
        except BaseException:
            stop(proc)
            raise
        return proc, port, time.perf_counter() - t0
    raise AssertionError("unreachable: the last attempt returns or raises")
