"""The ``Orchestrator``: podium's Python API.

It owns each tenant's providers and one router per tenant, turns friendly keyword arguments into
canonical requests, and hands them down the request stack (``Recorded`` -> ``Router`` -> provider
adapter). Built from ``Settings`` and started, it also persists: providers created at run time go to
the encrypted configuration directory, every request to the request log and the audit trail.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
import weakref
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

from podium._data_api import DataApi
from podium._durable import Durable
from podium._governance_api import GovernanceApi, governance_config
from podium._inflight import InFlight
from podium._provider_factory import build_provider
from podium._provider_records import join_settings
from podium._providers_api import ProvidersApi
from podium._requests import build_chat_request, chat_request_from
from podium.backend import Backend, CallContext
from podium.config.governance_store import GovernanceStore
from podium.config.manager import ConfigManager
from podium.config.store import ProviderRecord
from podium.config.templates import TemplateRegistry
from podium.config.validators import ValidatorRegistry
from podium.errors import ConfigError, PodiumError, RequestError
from podium.events import ConfigEvent, EventBus
from podium.health import HealthMonitor, HealthRegistry, HealthSettings
from podium.health.stats import Statistics, StatsRecorder
from podium.limits.governance import Governance
from podium.limits.governed import Governed
from podium.limits.guarded import Guarded
from podium.observability.metrics import PodiumMetrics
from podium.provider_info import ModelInfo, ProviderInfo
from podium.providers.base import Provider
from podium.providers.custom import CustomAdapters
from podium.recording import Recorded
from podium.routing.retry import RetryPolicy
from podium.routing.router import Router
from podium.routing.strategies import STRATEGIES, Strategy
from podium.settings import Settings
from podium.storage.db import Database
from podium.storage.repositories import RequestLog
from podium.storage.writer import RecordWriter
from podium.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    CompletionRequest,
    CompletionResponse,
    EmbedRequest,
    EmbedResponse,
    MessageLike,
)

logger = logging.getLogger(__name__)


class Orchestrator(ProvidersApi, GovernanceApi, DataApi):
    """Async entry point: providers per tenant, and chat / stream / complete / embed over them.

    ``Orchestrator()`` keeps everything in memory. ``await Orchestrator.from_config("config.yaml")``
    (or ``Orchestrator(settings=...)`` then ``await start()``) builds the providers of the settings,
    persists run-time changes encrypted in the configuration directory, watches it for edits, and
    records requests, history and the audit trail in the database.

    Args:
        settings: Everything configurable; None for an in-memory orchestrator with defaults.
        retry: Retry rounds and backoff when every candidate provider failed (default: the settings').
        strategy: Name of the routing strategy (default: the settings' ``routing.default_strategy``,
            ``"priority"``: priority tiers, weighted round-robin among equals).

    Example:
        >>> orch = Orchestrator()
        >>> await orch.create_provider(type="openai", name="gpt", tenant="my-app", api_key="sk-...")
        >>> r = await orch.chat([{"role": "user", "content": "Hello"}], tenant="my-app")
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        retry: RetryPolicy | None = None,
        strategy: str | None = None,
    ) -> None:
        self.settings = settings
        self.retry = retry or (settings.routing.retry if settings else RetryPolicy())
        self._strategy_name = strategy or (settings.routing.default_strategy if settings else "priority")
        try:
            STRATEGIES.get(self._strategy_name)  # fail at construction on an unknown name
        except PodiumError as exc:
            raise ConfigError(f"routing.default_strategy: {exc.message}") from exc
        self._providers: dict[str, dict[str, Provider]] = {}
        self._routers: dict[str, Router] = {}
        self._backends: dict[str, Backend] = {}
        self._lock = asyncio.Lock()
        self._retiring: dict[asyncio.Task[None], Provider] = {}
        self.stats = StatsRecorder()
        self.health = HealthRegistry(settings.health if settings else HealthSettings())
        self.metrics = PodiumMetrics()
        self.metrics.watch_health(self.health)
        self._monitor: HealthMonitor | None = None
        self.bus = EventBus()
        self.adapter = CustomAdapters()
        self.validators = ValidatorRegistry()
        self.templates = TemplateRegistry()
        self._code_built: set[tuple[str, str]] = set()
        self.governance = Governance(bus=self.bus)
        self._governance_store: GovernanceStore | None = None
        self._settings_governance: tuple[list[dict[str, Any]], list[dict[str, Any]]] = ([], [])
        self._governance_watch: asyncio.Task[None] | None = None
        self._guards: weakref.WeakKeyDictionary[Provider, Guarded] = weakref.WeakKeyDictionary()
        self._inflight = InFlight()
        self._durable: Durable | None = None
        self._started = False

    @classmethod
    async def from_config(cls, path: str | Path | None = None, **overrides: Any) -> Orchestrator:
        """Build and start an orchestrator from ``config.yaml``, ``.env`` and the environment.

        Args:
            path: The YAML file; None looks for ``config.yaml`` in the current directory.
            **overrides: Settings that win over every source (``storage={"database_url": ...}``).

        Raises:
            ConfigError: unknown keys or invalid values (the message names the key and the fix), a
                provider entry that cannot be built, or an unusable database or config directory.
        """
        orch = cls(Settings.load(path, **overrides))
        await orch.start()
        return orch

    async def start(self) -> None:
        """Create the configured providers; open storage and the config directory and watch it.

        A bare ``Orchestrator()`` (no settings) has nothing to start; calling this is harmless.

        Raises:
            ConfigError: a configured provider is invalid, or storage cannot be opened.
        """
        if self._started or self.settings is None:
            self._started = True
            return
        settings = self.settings
        self.governance = Governance.from_settings(settings, settings.governance, bus=self.bus)
        self._settings_governance = governance_config(self.governance)
        for entry in settings.providers:
            values = {**settings.provider_defaults(entry.type), **entry.settings}
            try:
                provider = await self._checked_build(entry.type, entry.name, entry.tenant, values)
            except RequestError as exc:
                raise ConfigError(
                    f"providers: entry {entry.name!r} (tenant {entry.tenant!r}): {exc.message}. "
                    "Fix it in config.yaml or the environment."
                ) from exc
            self._install(provider)
        durable = await Durable.open(settings, self.bus)
        self._durable = durable
        # Without request records the log stays empty: day analytics then read the ledger's own days.
        log = RequestLog(durable.database) if settings.storage.record_requests else None
        self.governance.attach_storage(durable.writer, log)
        try:
            manager = durable.config_manager
            manager.validators = self.validators
            manager.templates = self.templates = TemplateRegistry(manager.store)
            for records in (await manager.load()).values():
                for record in records.values():
                    # Stored providers win over config.yaml: they hold the run-time changes.
                    self._install(self._from_record(record))
            self._governance_store = GovernanceStore(manager.store.directory, manager.store.cipher)
            self._load_governance(keep=self._settings_governance)
            self._governance_watch = asyncio.get_running_loop().create_task(
                self._watch_governance(settings.config_store.watch_interval), name="podium-governance-watch"
            )
            self.bus.subscribe("config.*", self._apply_external_change)
            await manager.watch(interval=settings.config_store.watch_interval)
            writer = durable.writer
            self.metrics.watch_record_queue(lambda: writer.stats().queued)
            self._monitor = HealthMonitor(
                self.health,
                self._all_providers,
                interval=settings.health.check_interval or settings.performance.health_check_interval,
                # With Redis, replicas share health and take turns probing; alone, nothing to share.
                store=self.governance.store if settings.redis_url else None,
            )
            self._monitor.start()
            # Stacks built before start (if any) used the in-memory parts: rebuild them.
            self._routers.clear()
            self._backends.clear()
        except BaseException:
            await self.aclose()
            raise
        self._started = True

    # ------------------------------------------------------------- durable parts

    @property
    def config_manager(self) -> ConfigManager:
        """Templates, validators, hooks and the encrypted store (started orchestrators only).

        Raises:
            ConfigError: the orchestrator was built without settings or not started.
        """
        return self._need_durable().config_manager

    @property
    def database(self) -> Database | None:
        """The database of a started orchestrator; None in memory."""
        return self._durable.database if self._durable else None

    @property
    def writer(self) -> RecordWriter | None:
        """The background record writer of a started orchestrator; None in memory."""
        return self._durable.writer if self._durable else None

    def _from_record(self, record: ProviderRecord) -> Provider:
        values = join_settings(record.settings, record.secrets)
        try:
            return build_provider(record.type, record.name, record.tenant, values, self.adapter)
        except RequestError as exc:
            raise ConfigError(
                f"stored provider {record.name!r} of tenant {record.tenant!r} is invalid: {exc.message}"
            ) from exc

    async def _apply_external_change(self, event: ConfigEvent) -> None:
        """Apply an edit of the config files or another replica's write to the live providers."""
        if event.source == "api" or self._durable is None:
            return
        record = self._durable.config_manager.store.get(event.tenant, event.provider)
        async with self._lock:
            old = self._providers.get(event.tenant, {}).get(event.provider)
            if record is None:
                if old is not None:
                    del self._providers[event.tenant][event.provider]
                    self._forget(event.tenant, event.provider)
            else:
                self._install(self._from_record(record))
        if old is not None:
            self._retire(old)

    async def _watch_governance(self, interval: float) -> None:
        """Reload limits and budgets written by another replica (or edited by hand)."""
        store = self._governance_store
        assert store is not None
        while True:
            await asyncio.sleep(interval)
            try:
                if await asyncio.to_thread(store.changed):
                    self._load_governance(keep=self._settings_governance)
                    logger.info("rate limits and budgets reloaded from %s", store.path)
            except PodiumError as exc:
                logger.error("cannot reload %s: %s", store.path, exc.message)

    # ------------------------------------------------------------------- routing

    def router(self, tenant: str) -> Router:
        """The tenant's router (created on first use)."""
        router = self._routers.get(tenant)
        if router is None:
            strategy: Strategy = STRATEGIES.get(self._strategy_name)()
            router = Router(
                tenant,
                lambda: list(self._providers.get(tenant, {}).values()),
                strategy,
                self.retry,
                self.stats,
                health=self.health,
                metrics=self.metrics,
                attempt=self._guarded,
            )
            self._routers[tenant] = router
        return router

    def backend(self, tenant: str) -> Backend:
        """The top of the tenant's request stack: the router, recorded when storage is open."""
        backend = self._backends.get(tenant)
        if backend is None:
            backend = Governed(self.router(tenant), self.governance.guard)
            storage = self.settings.storage if self.settings is not None else None
            # With neither kind of record kept, the layer is left out rather than passed through.
            if (
                self._durable is not None
                and storage is not None
                and (storage.record_requests or storage.store_history)
            ):
                backend = Recorded(
                    backend,
                    self._durable.writer,
                    store_bodies=storage.store_bodies,
                    store_history=storage.store_history,
                    record_requests=storage.record_requests,
                )
            self._backends[tenant] = backend
        return backend

    @staticmethod
    def _context(
        tenant: str,
        provider: str | None,
        timeout: float | None,
        user: str | None,
        conversation_id: str | None = None,
    ) -> CallContext:
        if timeout is not None and timeout <= 0:
            raise RequestError("timeout must be positive", param="timeout")
        return CallContext(
            tenant=tenant,
            provider=provider,
            deadline=time.monotonic() + timeout if timeout else None,
            user_id=user,
            metadata={"conversation_id": conversation_id} if conversation_id else {},
        )

    build_chat_request = staticmethod(build_chat_request)

    async def chat(
        self,
        messages: str | Iterable[MessageLike],
        *,
        tenant: str = "default",
        provider: str | None = None,
        timeout: float | None = None,
        conversation_id: str | None = None,
        **params: Any,
    ) -> ChatResponse:
        """Answer a chat, failing over between the tenant's providers.

        Args:
            messages: A prompt, or OpenAI-shaped message dicts / ``Message`` objects.
            tenant: Whose providers to use.
            provider: Use only this provider (no failover to others).
            timeout: Seconds the whole request (every attempt included) may take.
            conversation_id: Continue this stored conversation (history is kept for requests that
                name a ``user``; without an id each request starts a new conversation).
            **params: ``model`` (a model name, ``provider/model``), ``temperature``, ``top_p``,
                ``max_tokens``, ``stop``, ``seed``, ``user``, ``metadata``, ``tools``, ``tool_choice``,
                ``parallel_tool_calls``, ``response_format``; anything else is passed to the provider.

        Raises:
            RequestError: invalid arguments. NoHealthyProviders: nothing to try.
            AllProvidersFailed: every attempt failed (``.attempts`` lists them).
        """
        request = chat_request_from(messages, params)
        ctx = self._context(tenant, provider, timeout, request.user, conversation_id)
        return await self.chat_request(request, ctx)

    async def chat_request(self, request: ChatRequest, ctx: CallContext) -> ChatResponse:
        """Answer a canonical request (the gateway server's entry point)."""
        with self._inflight:
            return await self.backend(ctx.tenant).chat(request, ctx)

    async def stream(
        self,
        messages: str | Iterable[MessageLike],
        *,
        tenant: str = "default",
        provider: str | None = None,
        timeout: float | None = None,
        conversation_id: str | None = None,
        **params: Any,
    ) -> AsyncIterator[ChatChunk]:
        """Stream a chat answer; the last chunk carries usage. Arguments as for ``chat``.

        Failover happens only before the first chunk; after it, errors reach the caller.
        """
        request = chat_request_from(messages, params)
        ctx = self._context(tenant, provider, timeout, request.user, conversation_id)
        batches = self.stream_request(request, ctx)
        try:
            async for batch in batches:
                for chunk in batch:
                    yield chunk
        finally:
            await batches.aclose()  # type: ignore[attr-defined]

    async def stream_request(self, request: ChatRequest, ctx: CallContext) -> AsyncIterator[list[ChatChunk]]:
        """Stream a canonical request as batches of chunks (the gateway server's entry point)."""
        with self._inflight:
            async for batch in self.backend(ctx.tenant).stream(request, ctx):
                yield batch

    async def complete_request(self, request: CompletionRequest, ctx: CallContext) -> CompletionResponse:
        """Complete a canonical request (the gateway server's entry point)."""
        with self._inflight:
            return await self.backend(ctx.tenant).complete(request, ctx)

    async def embed_request(self, request: EmbedRequest, ctx: CallContext) -> EmbedResponse:
        """Embed a canonical request (the gateway server's entry point)."""
        with self._inflight:
            return await self.backend(ctx.tenant).embed(request, ctx)

    async def complete(
        self,
        prompt: str,
        *,
        tenant: str = "default",
        provider: str | None = None,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        stop: str | list[str] | None = None,
        seed: int | None = None,
        user: str | None = None,
        timeout: float | None = None,
        **extra: Any,
    ) -> CompletionResponse:
        """Complete text (legacy completions API where the provider has one, else through chat)."""
        if not isinstance(prompt, str) or not prompt:
            raise RequestError("prompt must be a non-empty string", param="prompt")
        request = CompletionRequest(
            prompt=prompt,
            model=model,
            max_tokens=max_tokens,
            temperature=temperature,
            top_p=top_p,
            stop=[stop] if isinstance(stop, str) else stop,
            seed=seed,
            user=user,
            extra=extra or None,
        )
        ctx = self._context(tenant, provider, timeout, user)
        return await self.complete_request(request, ctx)

    async def embed(
        self,
        input: str | list[str],
        *,
        tenant: str = "default",
        provider: str | None = None,
        model: str | None = None,
        dimensions: int | None = None,
        user: str | None = None,
        timeout: float | None = None,
        **extra: Any,
    ) -> EmbedResponse:
        """Embed one text or several (one vector per text, in order)."""
        texts = [input] if isinstance(input, str) else list(input)
        if not texts or not all(isinstance(t, str) for t in texts):
            raise RequestError("input must be a string or a non-empty list of strings", param="input")
        request = EmbedRequest(
            input=texts, model=model, dimensions=dimensions, user=user, extra=extra or None
        )
        ctx = self._context(tenant, provider, timeout, user)
        return await self.embed_request(request, ctx)

    # ---------------------------------------------------------------- reporting

    def get_statistics(self, tenant: str | None = None) -> Statistics:
        """Requests, errors and latency per provider (of one tenant, or of all)."""
        return self.stats.snapshot(tenant)

    # ------------------------------------------------------------------ lifecycle

    async def shutdown(self, timeout: float = 30.0) -> None:
        """Stop gracefully: refuse new requests, let those under way finish, then ``aclose``.

        Args:
            timeout: Seconds to wait for requests under way.
        """
        if not await self._inflight.drain(timeout):
            logger.warning(
                "%d requests still under way after %.0f s; closing anyway", self._inflight.count, timeout
            )
        await self.aclose()

    def install_sigterm(self, *, timeout: float = 30.0) -> None:
        """On SIGTERM, ``shutdown`` (no request or record lost), then end the process as SIGTERM would.

        Servers that handle signals themselves (uvicorn) call ``shutdown`` from their own hook instead.
        """
        loop = asyncio.get_running_loop()
        started: list[asyncio.Task[None]] = []

        async def stop() -> None:
            await self.shutdown(timeout)
            loop.remove_signal_handler(signal.SIGTERM)  # the default action again: terminate
            os.kill(os.getpid(), signal.SIGTERM)

        def on_sigterm() -> None:
            if not started:
                started.append(loop.create_task(stop(), name="podium-shutdown"))

        loop.add_signal_handler(signal.SIGTERM, on_sigterm)

    async def aclose(self) -> None:
        """Close every provider's connections; write what is queued; close storage."""
        monitor, self._monitor = self._monitor, None
        if monitor is not None:
            await monitor.stop()
        watch, self._governance_watch = self._governance_watch, None
        if watch is not None:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)
        await self.governance.aclose()
        retiring = list(self._retiring.items())
        for task, _ in retiring:
            task.cancel()
        providers = [p for ps in self._providers.values() for p in ps.values()] + [p for _, p in retiring]
        await asyncio.gather(*(p.aclose() for p in providers), return_exceptions=True)
        durable, self._durable = self._durable, None
        if durable is not None:
            await durable.aclose()

    async def __aenter__(self) -> Orchestrator:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


__all__ = ["ModelInfo", "Orchestrator", "ProviderInfo"]
