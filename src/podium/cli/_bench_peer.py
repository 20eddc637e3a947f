"""LiteLLM as a peer in ``podium bench``: the same upstream, the same load, the same readings.

``podium bench --litellm litellm`` starts the LiteLLM proxy (one worker) on a configuration routing
the benchmark's model to the upstream podium is measured against, the way the shared harness runs it:
no database (so no spend logs), no master key, no callbacks, no retries, and the local model cost map
(the machine may have no internet). It is then driven exactly as each podium mode is, and its CPU and
memory are read from ``/proc`` the same way.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from podium.cli._bench_start import StartFailed, start_on_free_port

#: Seconds LiteLLM may take to answer its health check (it took about 9 s on the benchmark VM).
START_LIMIT = 180.0


@dataclass
class Peer:
    """A started LiteLLM proxy."""

    proc: subprocess.Popen[bytes]
    url: str
    startup_s: float
    workdir: Path
    version: str | None


def find_litellm(given: str) -> str:
    """The LiteLLM executable named by ``given`` (a path, or a name on ``PATH``).

    Raises:
        ValueError: there is no such executable; the message says how to install it.
    """
    found = shutil.which(given)
    if found is None:
        raise ValueError(
            f"no LiteLLM executable {given!r}: install it in its own virtual environment "
            "(python3 -m venv /tmp/litellm && /tmp/litellm/bin/pip install 'litellm[proxy]') and pass "
            "--litellm /tmp/litellm/bin/litellm"
        )
    return found


def litellm_config(upstream: str, model: str) -> str:
    """LiteLLM's proxy configuration: ``model`` routed to the OpenAI-compatible ``upstream``."""
    config = {
        "model_list": [
            {
                "model_name": model,
                "litellm_params": {
                    "model": f"openai/{model}",
                    "api_base": upstream,
                    "api_key": "sk-upstream-dummy",
                },
            }
        ],
        # An upstream failure must show as an error, as it does for podium (no retry).
        "litellm_settings": {"set_verbose": False, "request_timeout": 60, "num_retries": 0},
        "general_settings": {
            "disable_spend_logs": True,
            "disable_error_logs": True,
            # Without a master key LiteLLM refuses to start unless told; podium's modes without
            # authentication run on loopback in the same way.
            "dangerously_permit_weak_or_unset_master_key": True,
        },
    }
    return json.dumps(config, indent=1)  # JSON is YAML


def litellm_version(executable: str) -> str | None:
    """The installed LiteLLM's version, read by the Python of its environment (None if unknown)."""
    python = Path(executable).with_name("python")  # the virtual environment's, beside the script
    if not python.exists():
        return None
    out = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() or None


def start_litellm(
    executable: str,
    upstream: str,
    model: str,
    choose_port: Callable[[], int],
    wait_ready: Callable[[str, dict[str, str], subprocess.Popen[bytes], float], float],
    *,
    attempts: int = 3,
) -> Peer:
    """Start the LiteLLM proxy on a port from ``choose_port`` and wait for its health check.

    A port is free when chosen but another process may bind it before LiteLLM does; when its log
    says so, a new port is tried, up to ``attempts`` starts in all (see :mod:`podium.cli._bench_start`).

    Raises:
        RuntimeError: it exited or did not answer within :data:`START_LIMIT` seconds (with the end
            of its log).
    """
    workdir = Path(tempfile.mkdtemp(prefix="podium-bench-litellm-"))
    config = workdir / "config.yaml"
    config.write_text(litellm_config(upstream, model))
    env = {
        **os.environ,
        "LITELLM_LOG": "ERROR",
        "LITELLM_MODE": "PRODUCTION",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }
    log_path = workdir / "litellm.log"

    def launch(port: int) -> subprocess.Popen[bytes]:
        cmd = [executable, "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
        with open(log_path, "wb") as log:
            return subprocess.Popen(
                [*cmd, "--num_workers", "1"], stdout=log, stderr=subprocess.STDOUT, cwd=workdir, env=env
            )

    def ready(port: int, proc: subprocess.Popen[bytes]) -> None:
        wait_ready(f"http://127.0.0.1:{port}/health/liveliness", {}, proc, START_LIMIT)

    try:
        proc, port, startup_s = start_on_free_port(
            launch, ready, _kill, log_path, choose_port, attempts=attempts
        )
    except StartFailed as exc:
        shutil.rmtree(workdir, ignore_errors=True)
        raise RuntimeError(f"LiteLLM: {exc.reason}; the end of its log:\n{exc.tail}") from exc
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return Peer(proc, f"http://127.0.0.1:{port}", startup_s, workdir, litellm_version(executable))


def _kill(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()
    proc.wait()
