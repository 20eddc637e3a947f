"""Active health checks: probe every provider periodically, and share health with other replicas.

Each provider is probed with its own cheap ``check()`` every ``check_interval`` seconds (jittered, so
providers and replicas do not probe in lockstep). With a state store, a lock per provider that outlives
the probe makes sure only one replica probes a provider per interval, and never two at once; the result
reaches the other replicas through the health sync.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterable

from podium.health.registry import HealthRegistry
from podium.health.sync import HealthSync, SharedStore
from podium.providers.base import CheckResult, Provider

log = logging.getLogger(__name__)


class HealthMonitor:
    """Runs the probe loop and the cross-replica sync loop.

    Args:
        registry: Where probe results go.
        providers: Returns every provider to watch (looked up each round, so changes apply).
        interval: Seconds between probes of one provider (``HealthSettings.check_interval`` or
            ``performance.health_check_interval``).
        store: The shared state store (None: this process alone).
        rng: Randomness for jitter (injectable for tests).
    """

    def __init__(
        self,
        registry: HealthRegistry,
        providers: Callable[[], Iterable[Provider]],
        interval: float,
        store: SharedStore | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.registry = registry
        self.settings = registry.settings
        self._providers = providers
        self.interval = interval
        self.store = store
        self.sync = HealthSync(registry, store) if store is not None else None
        self._rng = rng or random.Random()
        self._due: dict[tuple[str, str], float] = {}
        self._probing: set[tuple[str, str]] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._probes: set[asyncio.Task[None]] = set()

    @property
    def running(self) -> bool:
        """Whether the loops are running."""
        return bool(self._tasks)

    def start(self) -> None:
        """Start probing (and syncing, with a store) in the background."""
        if self._tasks:
            return
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._probe_loop(), name="podium-health-probes"))
        if self.sync is not None:
            self._tasks.append(loop.create_task(self._sync_loop(), name="podium-health-sync"))

    async def stop(self) -> None:
        """Stop the loops, wait for probes under way, and withdraw this replica's shared figures."""
        tasks, self._tasks = self._tasks, []
        for task in [*tasks, *self._probes]:
            task.cancel()
        await asyncio.gather(*tasks, *self._probes, return_exceptions=True)
        if self.sync is not None:
            with contextlib.suppress(Exception):
                await self.sync.leave()

    async def wait_probes(self) -> None:
        """Wait for the probes under way to finish."""
        while self._probes:
            await asyncio.gather(*list(self._probes), return_exceptions=True)

    async def test_provider(self, provider: Provider) -> CheckResult:
        """Probe one provider now (outside the schedule) and record the outcome."""
        result = await self._check(provider)
        self.registry.record_probe(provider.config.tenant, provider.name, result)
        return result

    async def probe_due(self) -> int:
        """Probe every provider whose turn has come; returns how many probes were started."""
        now = time.monotonic()
        started = 0
        live: set[tuple[str, str]] = set()
        for provider in self._providers():
            if not provider.config.enabled:
                continue
            key = (provider.config.tenant, provider.name)
            live.add(key)
            due = self._due.get(key)
            if due is None:
                # First sight: soon, but spread over a fraction of the interval.
                due = self._due[key] = now + self._rng.uniform(0, self.interval * self.settings.check_jitter)
            if due > now or key in self._probing:
                continue
            self._due[key] = now + self._next_gap()
            self._probing.add(key)
            task = asyncio.get_running_loop().create_task(self._probe(provider, key))
            self._probes.add(task)
            task.add_done_callback(self._probes.discard)
            started += 1
        for key in set(self._due) - live:
            del self._due[key]
        return started

    def _next_gap(self) -> float:
        j = self.settings.check_jitter
        return self.interval * (1.0 + self._rng.uniform(-j, j))

    async def _probe(self, provider: Provider, key: tuple[str, str]) -> None:
        try:
            if self.store is not None:
                # Held past the probe and never released: one probe per provider per interval across
                # every replica; it also outlives the probe's own timeout, so two never overlap.
                ttl = max(
                    self.settings.probe_timeout + 1.0, self.interval * (1.0 - self.settings.check_jitter)
                )
                lock = f"{self.settings.key_prefix}:probe:{key[0]}:{key[1]}"
                if not await self.store.try_lock(lock, ttl):
                    return
            result = await self._check(provider)
            self.registry.record_probe(key[0], key[1], result)
        except Exception:  # a probe must never kill the loop
            log.exception("health probe of %s/%s failed unexpectedly", *key)
        finally:
            self._probing.discard(key)

    async def _check(self, provider: Provider) -> CheckResult:
        t0 = time.perf_counter()
        try:
            async with asyncio.timeout(self.settings.probe_timeout):
                return await provider.check()
        except TimeoutError:
            return CheckResult(
                success=False,
                latency_ms=(time.perf_counter() - t0) * 1000,
                error=f"{provider.name}: no answer to the health check in {self.settings.probe_timeout:g} s",
                error_type="ProviderTimeout",
            )

    async def _probe_loop(self) -> None:
        while True:
            await self.probe_due()
            now = time.monotonic()
            nearest = min(self._due.values(), default=now + 1.0)
            # Wake at least every second to notice new providers.
            await asyncio.sleep(min(1.0, max(0.01, nearest - now)))

    async def _sync_loop(self) -> None:
        assert self.sync is not None
        while True:
            try:
                await self.sync.sync_once()
            except Exception as exc:  # the store may be briefly unreachable; local health still works
                log.warning("health sync with the state store failed: %s", exc)
            await asyncio.sleep(self.settings.sync_interval)
