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
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from podium import data_transfer
from podium._durable import Durable
from podium._governance_api import GovernanceApi, governance_config
from podium._inflight import InFlight
from podium._provider_factory import build_provider, current_settings, normalise
from podium._provider_records import join_settings, split_settings
from podium._requests import build_chat_request, chat_request_from
from podium.backend import Backend, CallContext
from podium.config.governance_store import GovernanceStore
from podium.config.manager import ConfigManager
from podium.config.store import ProviderRecord
from podium.config.templates import TemplateRegistry
from podium.config.validators import ValidatorRegistry
from podium.costs.pricing import PriceOverride
from podium.errors import ConfigError, Conflict, NotFound, PodiumError, RequestError
from podium.events import ConfigEvent, EventBus
from podium.health import HealthMonitor, HealthRegistry, HealthSettings, HealthSummary, ProviderHealth
from podium.health.stats import Statistics, StatsRecorder
from podium.limits.governance import Governance
from podium.limits.governed import Governed
from podium.limits.guarded import Guarded
from podium.observability.metrics import PodiumMetrics
from podium.provider_info import ModelInfo, ProviderInfo, describe
from podium.providers.base import CheckResult, Provider
from podium.providers.custom import CustomAdapters
from podium.recording import Recorded
from podium.routing.retry import RetryPolicy
from podium.routing.router import Router
from podium.routing.strategies import STRATEGIES, Strategy
from podium.settings import Settings
from podium.storage.conversations import Conversation, Conversations
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


class Orchestrator(GovernanceApi):
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
        self.governance.attach_storage(durable.writer, RequestLog(durable.database))
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

    def _need_durable(self) -> Durable:
        if self._durable is None:
            raise ConfigError(
                "this orchestrator keeps everything in memory; build it with "
                "Orchestrator.from_config(...) (or Orchestrator(settings=...) and await start())"
            )
        return self._durable

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

    # ----------------------------------------------------------------- providers

    async def _checked_build(
        self, type_: str, name: str, tenant: str, values: Mapping[str, Any]
    ) -> Provider:
        """Build a provider after the validators (built-in and registered) passed; every problem listed."""
        config = {**normalise(values), "name": name, "tenant": tenant, "type": type_}
        errors = await self.validators.validate(type_, config)
        errors += _price_errors(config)
        try:
            provider = build_provider(type_, name, tenant, values, self.adapter)
        except RequestError as exc:
            if not errors:
                raise
            raise RequestError(f"invalid provider {name!r}: {'; '.join(errors)}; {exc.message}") from exc
        if errors:
            raise RequestError(f"invalid provider {name!r}: {'; '.join(errors)}")
        return provider

    def _install(self, provider: Provider) -> None:
        c = provider.config
        self._providers.setdefault(c.tenant, {})[provider.name] = provider
        self.governance.pricing.set_provider(
            provider.name, tenant=c.tenant, kind=c.type, prices=c.prices, models=c.model_prices
        )

    def _guarded(self, provider: Provider) -> Backend:
        """The governance layer of one provider (its limits, its cost), made once per provider object."""
        guarded = self._guards.get(provider)
        if guarded is None:
            guarded = Guarded(
                provider,
                self.governance.guard,
                provider_name=provider.name,
                default_model=provider.config.default_model,
            )
            self._guards[provider] = guarded
        return guarded

    async def _persist(self, provider: Provider) -> None:
        if self._durable is None:
            return
        settings, secrets = split_settings(provider)
        c = provider.config
        await self._durable.config_manager.save(ProviderRecord(c.tenant, c.name, c.type, settings, secrets))

    async def create_provider(
        self, *, type: str, name: str, tenant: str = "default", **settings: Any
    ) -> ProviderInfo:
        """Create a provider for a tenant (persisted, secrets encrypted, when started from settings).

        Args:
            type: ``openai``, ``anthropic``, ``google``, ``ollama``, ``custom``, or ``local`` (with
                ``server_type`` ``ollama``/``lmstudio``/``vllm``/``llamacpp``).
            name: Unique within the tenant.
            tenant: The tenant that owns it; other tenants never see it.
            **settings: ``api_key``, ``base_url``, ``default_model``, ``models``, ``priority`` (lower is
                tried first), ``weight``, ``timeout``, ``headers``, plus the type's own options
                (``organization``, ``anthropic_version``, ``request_format``, ...). camelCase works too.

        Raises:
            Conflict: the tenant already has a provider of that name.
            RequestError: a setting is invalid or unknown, or a validator refused it (every problem
                is listed).
        """
        provider = await self._checked_build(type, name, tenant, settings)
        async with self._lock:
            if name in self._providers.get(tenant, {}):
                raise Conflict(
                    f"tenant {tenant!r} already has a provider named {name!r}; use update_provider"
                )
            await self._persist(provider)
            self._install(provider)
        return describe(provider)

    async def create_provider_from_template(
        self, template: str, name: str, tenant: str = "default", variables: Mapping[str, Any] | None = None
    ) -> ProviderInfo:
        """Create a provider from a template (built-in: openai, anthropic, google, ollama, lmstudio, custom).

        Args:
            template: The template's name.
            name: The new provider's name.
            tenant: Its tenant.
            variables: Values for the template's ``{{VAR}}`` placeholders.

        Raises:
            NotFound: no such template.
            RequestError: variables are missing (all listed), or the result is invalid.
            Conflict: the tenant already has a provider of that name.
        """
        settings = self.templates.render(template, variables or {})
        type_ = str(settings.pop("type"))
        return await self.create_provider(type=type_, name=name, tenant=tenant, **settings)

    async def add_provider(self, provider: Provider) -> None:
        """Add a ready-made provider object (a plugin's, or ``podium.testing.MockProvider``).

        It lives in memory only: code-built objects cannot be stored as configuration.
        """
        async with self._lock:
            tenant = provider.config.tenant
            if provider.name in self._providers.get(tenant, {}):
                raise Conflict(f"tenant {tenant!r} already has a provider named {provider.name!r}")
            self._install(provider)
            self._code_built.add((tenant, provider.name))

    def is_configured(self, name: str, tenant: str = "default") -> bool:
        """Whether a provider comes from configuration (settings, the API), not from ``add_provider``."""
        return (tenant, name) not in self._code_built and name in self._providers.get(tenant, {})

    async def check_provider(
        self, *, type: str, name: str, tenant: str = "default", **settings: Any
    ) -> ProviderInfo:
        """Validate provider settings as ``create_provider`` would, without creating anything.

        Raises:
            RequestError: the settings are invalid (every problem listed).
        """
        return describe(await self._checked_build(type, name, tenant, settings))

    async def update_provider(self, name: str, tenant: str = "default", **changes: Any) -> ProviderInfo:
        """Change some settings of a provider; the rest stay as they were.

        Requests already under way finish on the old settings; new ones use the new settings.

        Raises:
            NotFound: no such provider. RequestError: an invalid setting (every problem listed).
        """
        async with self._lock:
            old = self._get(name, tenant)
            current = current_settings(old)
            current.update(normalise(changes))
            type_ = str(current.pop("type_override", old.config.type))
            provider = await self._checked_build(type_, name, tenant, current)
            await self._persist(provider)
            self._install(provider)
        self._retire(old)
        return describe(provider)

    async def remove_provider(self, name: str, tenant: str = "default") -> None:
        """Remove a provider; its pooled connections close once in-flight requests finish."""
        async with self._lock:
            old = self._get(name, tenant)
            if self._durable is not None:
                await self._durable.config_manager.remove(tenant, name)
            del self._providers[tenant][name]
            self._code_built.discard((tenant, name))
        self._forget(tenant, name)
        self._retire(old)

    def _forget(self, tenant: str, name: str) -> None:
        self.stats.forget(tenant, name)
        self.health.forget(tenant, name)

    def _all_providers(self) -> list[Provider]:
        return [p for ps in self._providers.values() for p in ps.values()]

    def _retire(self, provider: Provider) -> None:
        async def close_later() -> None:
            await asyncio.sleep(provider.config.timeout + 1.0)
            await provider.aclose()

        task = asyncio.get_running_loop().create_task(close_later())
        self._retiring[task] = provider
        task.add_done_callback(lambda t: self._retiring.pop(t, None))

    def _get(self, name: str, tenant: str) -> Provider:
        provider = self._providers.get(tenant, {}).get(name)
        if provider is None:
            raise NotFound(f"tenant {tenant!r} has no provider named {name!r}")
        return provider

    def provider(self, name: str, tenant: str = "default") -> Provider:
        """The live provider object (for provider-specific calls such as ``count_tokens``)."""
        return self._get(name, tenant)

    def get_provider(self, name: str, tenant: str = "default") -> ProviderInfo:
        """A provider's settings, secrets masked."""
        return describe(self._get(name, tenant))

    def list_providers(self, tenant: str | None = None) -> list[ProviderInfo]:
        """Every provider of a tenant (of all tenants when None), secrets masked."""
        tenants = [tenant] if tenant is not None else sorted(self._providers)
        return [describe(p) for t in tenants for p in self._providers.get(t, {}).values()]

    def tenants(self) -> list[str]:
        """Every tenant that has a provider, sorted."""
        return sorted(t for t, ps in self._providers.items() if ps)

    async def test_provider(self, name: str, tenant: str = "default") -> CheckResult:
        """Check a provider's connectivity with a cheap probe (model list or a one-token request).

        The result also counts towards the provider's health (a success half-opens an open circuit).
        """
        provider = self._get(name, tenant)
        if self._monitor is not None:
            return await self._monitor.test_provider(provider)
        result = await provider.check()
        self.health.record_probe(tenant, name, result)
        return result

    def get_provider_health(self, name: str, tenant: str = "default") -> ProviderHealth:
        """A provider's health: status, circuit, error rate, latency percentiles, throughput.

        Raises:
            NotFound: the tenant has no such provider.
        """
        self._get(name, tenant)
        return self.health.provider_health(tenant, name)

    def get_health_summary(self, tenant: str | None = None) -> HealthSummary:
        """How many providers are healthy, degraded, unhealthy (of one tenant, or of all), and each one."""
        tenants = [tenant] if tenant is not None else sorted(self._providers)
        return self.health.summary((t, n) for t in tenants for n in self._providers.get(t, {}))

    async def list_models(self, tenant: str = "default") -> list[ModelInfo]:
        """The models of the tenant's providers (configured ones; no upstream call)."""
        out: list[ModelInfo] = []
        for p in self._providers.get(tenant, {}).values():
            for m in dict.fromkeys([*(x for x in [p.config.default_model] if x), *p.config.models]):
                out.append(ModelInfo(id=m, provider=p.name, type=p.config.type))
        return out

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
            if self._durable is not None and self.settings is not None:
                storage = self.settings.storage
                backend = Recorded(
                    backend,
                    self._durable.writer,
                    store_bodies=storage.store_bodies,
                    store_history=storage.store_history,
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
        self._inflight.enter()
        try:
            return await self.backend(ctx.tenant).chat(request, ctx)
        finally:
            self._inflight.leave()

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
        async for chunk in self.stream_request(request, ctx):
            yield chunk

    async def stream_request(self, request: ChatRequest, ctx: CallContext) -> AsyncIterator[ChatChunk]:
        """Stream a canonical request (the gateway server's entry point)."""
        self._inflight.enter()
        try:
            async for chunk in self.backend(ctx.tenant).stream(request, ctx):
                yield chunk
        finally:
            self._inflight.leave()

    async def complete_request(self, request: CompletionRequest, ctx: CallContext) -> CompletionResponse:
        """Complete a canonical request (the gateway server's entry point)."""
        self._inflight.enter()
        try:
            return await self.backend(ctx.tenant).complete(request, ctx)
        finally:
            self._inflight.leave()

    async def embed_request(self, request: EmbedRequest, ctx: CallContext) -> EmbedResponse:
        """Embed a canonical request (the gateway server's entry point)."""
        self._inflight.enter()
        try:
            return await self.backend(ctx.tenant).embed(request, ctx)
        finally:
            self._inflight.leave()

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

    # ------------------------------------------------------------------ history

    def _conversations(self) -> Conversations:
        return Conversations(self._need_durable().database)

    async def get_history(
        self, user_id: str, tenant: str = "default", *, limit: int = 50
    ) -> list[Conversation]:
        """A user's conversations, newest first, without their messages.

        Records still waiting in the writer's queue are written first, so a request just answered
        is included.
        """
        durable = self._need_durable()
        await durable.writer.flush()
        return await self._conversations().list_for_user(tenant=tenant, user_id=user_id, limit=limit)

    async def get_conversation(
        self, conversation_id: str, user_id: str, tenant: str = "default"
    ) -> Conversation:
        """One of a user's conversations with its messages, oldest first.

        Raises:
            NotFound: no such conversation for this user and tenant (another's is never shown).
        """
        await self._need_durable().writer.flush()
        return await self._conversations().get(conversation_id, tenant=tenant, user_id=user_id)

    async def delete_history(
        self, user_id: str, tenant: str = "default", *, conversation_id: str | None = None
    ) -> int:
        """Delete one conversation of a user, or all of them; returns how many were deleted.

        Raises:
            NotFound: the named conversation does not exist for this user and tenant.
        """
        await self._need_durable().writer.flush()
        conversations = self._conversations()
        if conversation_id is not None:
            await conversations.delete(conversation_id, tenant=tenant, user_id=user_id)
            return 1
        return await conversations.delete_for_user(tenant=tenant, user_id=user_id)

    # ------------------------------------------------------------ export / import

    async def export_data(
        self, *, include_secrets: bool = False, include_history: bool = True
    ) -> dict[str, Any]:
        """Providers, templates, tenants and conversation history as one JSON-ready document.

        Args:
            include_secrets: Put API keys and other secrets in the document in clear. Without them it
                holds no secret at all, and importing asks for them.
            include_history: Include every conversation with its messages.
        """
        return await data_transfer.export_data(
            self, include_secrets=include_secrets, include_history=include_history
        )

    async def import_data(
        self, data: Mapping[str, Any], *, secrets: Mapping[str, Mapping[str, str]] | None = None
    ) -> dict[str, int]:
        """Recreate an export in this instance; all or nothing.

        Args:
            data: A document from ``export_data``.
            secrets: The secrets an export without them needs: ``{"tenant/provider": {"api_key": ...}}``.

        Raises:
            MissingSecrets: secrets are needed (the error lists them); nothing is imported.
            Conflict: something in the document already exists; nothing is imported.
        """
        return await data_transfer.import_data(self, data, secrets=secrets)

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


def _price_errors(config: Mapping[str, Any]) -> list[str]:
    errors: list[str] = []
    tables = [("prices", config.get("prices"))]
    tables += [(f"model_prices.{m}", p) for m, p in (config.get("model_prices") or {}).items()]
    for where, table in tables:
        if table is None:
            continue
        try:
            PriceOverride.model_validate(table)
        except ValidationError as exc:
            errors += [f"{where}.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
    return errors


__all__ = ["ModelInfo", "Orchestrator", "ProviderInfo"]
