"""``podium serve``: run the gateway under uvicorn.

Each worker process builds its own orchestrator from the same configuration (the options travel to
workers in one environment variable, since uvicorn starts workers from an import string). SIGTERM stops
accepting, lets in-flight requests finish (``graceful_timeout``), then closes the orchestrator, which
drains the record writer.
"""

from __future__ import annotations

import gc
import json
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import typer
import uvicorn
from starlette.applications import Starlette

from podium.auth.chain import build_authenticator
from podium.auth.config import AuthSettings
from podium.auth.principal import Authenticator, Principal
from podium.errors import ConfigError
from podium.orchestrator import Orchestrator
from podium.server import create_app
from podium.server.protocol import OneWriteHttpToolsProtocol
from podium.settings import Settings
from podium.storage.api_keys import ApiKeys

_ENV = "PODIUM_SERVE_OPTIONS"


class _StartedAuthenticator:
    """Builds the configured authenticator once the orchestrator's database is open, then delegates."""

    def __init__(self, orchestrator: Orchestrator, settings: AuthSettings) -> None:
        self.orchestrator = orchestrator
        self.settings = settings
        self._inner: Any = None

    async def start(self) -> None:
        db = self.orchestrator.database
        self._inner = build_authenticator(
            self.settings, ApiKeys(db) if db is not None else None, self.orchestrator.writer
        )
        await self._inner.start()

    async def aclose(self) -> None:
        if self._inner is not None:
            await self._inner.aclose()

    async def authenticate(self, headers: Mapping[str, str]) -> Principal:
        principal: Principal = await self._inner.authenticate(headers)
        return principal


def build_app(config: str | None = None, no_auth: bool = False) -> Starlette:
    """The app one worker serves (its orchestrator starts and stops with it)."""
    settings = Settings.load(config)
    server, auth = settings.server, settings.auth
    orchestrator = Orchestrator(settings)
    authenticator: Authenticator | None = None
    if not no_auth and auth.enabled:
        authenticator = _StartedAuthenticator(orchestrator, auth)
    app = create_app(
        orchestrator,
        authenticator=authenticator,
        auth_enabled=authenticator is not None,
        aliases=server.aliases,
        max_body_bytes=server.max_body_bytes,
        manage_orchestrator=True,
    )
    app.router.lifespan_context = _serving_gc(app.router.lifespan_context)
    return app


# Tracked objects allocated (net) before a young-generation collection while serving; Python's default
# is 700. See _serving_gc.
SERVING_GC_THRESHOLD = 20_000


def _serving_gc(inner: Any) -> Any:
    """Wrap a lifespan so that the cycle collector, while serving, leaves requests alone.

    Two measures, both taken once start-up is done, and both undone at shutdown:

    - What start-up built is frozen, moved out of the collector's sight. A served process holds a large,
      long-lived heap (modules, schemas, price tables, config), and every full collection walked all of
      it. Measured with wrk at concurrency 1 against the harness's nginx, full collections took 60-106
      ms each and set the p99 latency (64-70 ms). With the start-up heap frozen, p99 was 8.8 ms and the
      maximum 14.6 ms.
    - The young generation is collected after ``SERVING_GC_THRESHOLD`` allocations instead of 700. A
      served request leaves no reference cycles behind (tests/limits/test_guard.py checks the
      governance objects), so young collections find next to nothing to free. At 700, though, the
      objects of the requests in flight alone crossed the threshold every few requests. Each
      collection then walked all of them and promoted them, and older collections followed. Measured
      with wrk at concurrency 64 (full mode, 10 s), the collector ran about 3,000 times and took 21.5
      us per request. At 20,000 it did not run at all.

    Only ``podium serve`` does this: a library user's process is theirs to tune.
    """

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        async with inner(app) as state:
            gc.collect()
            gc.freeze()
            before = gc.get_threshold()
            gc.set_threshold(SERVING_GC_THRESHOLD, *before[1:])
            try:
                yield state
            finally:
                gc.set_threshold(*before)
                gc.unfreeze()

    return lifespan


def worker_app() -> Starlette:
    """Uvicorn factory for worker processes: options come from ``PODIUM_SERVE_OPTIONS``."""
    options = json.loads(os.environ.get(_ENV, "{}"))
    return build_app(options.get("config"), bool(options.get("no_auth")))


def serve(
    config: Path | None = typer.Option(None, "--config", "-c", help="config.yaml (default: ./config.yaml)."),
    host: str | None = typer.Option(None, help="Interface (default: server.host, 127.0.0.1)."),
    port: int | None = typer.Option(None, help="Port (default: server.port, 8080)."),
    workers: int | None = typer.Option(None, min=1, help="Worker processes (default: server.workers, 1)."),
    no_auth: bool = typer.Option(False, "--no-auth", help="Serve without authentication (local use only)."),
    log_level: str = typer.Option("info", help="uvicorn log level."),
) -> None:
    """Run the gateway: OpenAI- and Anthropic-compatible /v1 and the /api/ai API."""
    path = str(config) if config is not None else None
    try:
        settings = Settings.load(path)
    except ConfigError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from exc
    server = settings.server
    n = workers or server.workers
    common: dict[str, Any] = {
        "host": host or server.host,
        "port": port if port is not None else server.port,
        "log_level": log_level,
        "timeout_graceful_shutdown": server.graceful_timeout,
        "http": OneWriteHttpToolsProtocol,  # uvicorn's httptools protocol, one write per answer
        "loop": "uvloop",
        "access_log": False,
        "lifespan": "on",
    }
    if n == 1:
        uvicorn.run(build_app(path, no_auth), **common)
        return
    if settings.storage.database_url.startswith("sqlite"):
        # Measured: two workers on one SQLite file served 1.14x one worker with a 2.2 s p99 at c=64
        # (their record writers take turns on its one write lock); on PostgreSQL, 1.54x, p99 58 ms.
        typer.echo(
            f"warning: {n} workers share one SQLite file, whose single write lock their record writers "
            "take in turn; under load requests wait for them. Use PostgreSQL (DATABASE_URL or "
            "storage.database_url) to serve with several workers.",
            err=True,
        )
    os.environ[_ENV] = json.dumps({"config": path, "no_auth": no_auth})
    uvicorn.run("podium.cli.serve:worker_app", factory=True, workers=n, **common)
