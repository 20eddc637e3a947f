"""The Orchestrator's provider management: create, update, remove, inspect, probe, health."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from podium._durable import Durable
from podium._provider_factory import build_provider, current_settings, normalise
from podium._provider_records import split_settings
from podium.backend import Backend
from podium.config.store import ProviderRecord
from podium.config.templates import TemplateRegistry
from podium.config.validators import ValidatorRegistry
from podium.costs.pricing import PriceOverride
from podium.errors import Conflict, NotFound, RequestError
from podium.health import HealthMonitor, HealthRegistry, HealthSummary, ProviderHealth
from podium.health.stats import StatsRecorder
from podium.limits.governance import Governance
from podium.limits.guarded import Guarded
from podium.provider_info import ModelInfo, ProviderInfo, describe
from podium.providers.base import CheckResult, Provider
from podium.providers.custom import CustomAdapters


class ProvidersApi:
    """Mixed into ``Orchestrator``: each tenant's providers, their persistence, health and probes."""

    _providers: dict[str, dict[str, Provider]]
    _lock: asyncio.Lock
    _retiring: dict[asyncio.Task[None], Provider]
    _code_built: set[tuple[str, str]]
    _guards: weakref.WeakKeyDictionary[Provider, Guarded]
    _durable: Durable | None
    _monitor: HealthMonitor | None
    adapter: CustomAdapters
    validators: ValidatorRegistry
    templates: TemplateRegistry
    governance: Governance
    stats: StatsRecorder
    health: HealthRegistry

    async def _checked_build(self, type_: str, name: str, tenant: str, values: Mapping[str, Any]) -> Provider:
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
