"""Metric families kept as plain numbers and turned into Prometheus metrics only when scraped.

prometheus-client's ``Counter``, ``Gauge`` and ``Histogram`` take a lock on every increment (a
histogram observation takes two) and look a series up through ``labels()``. A served request records
about a dozen values, and in the profile of ``podium serve`` that locking cost more than the work it
guards. Here a family is a dict from label values to numbers: one dict lookup and one addition per
value. They are meant for one event loop's thread (podium's request path); another thread may scrape
at any time, because every read copies the dict in one step.

Each family is also a ``Collector``: register it in a ``CollectorRegistry`` and it is exposed exactly
as prometheus-client's own class of that type would be (``_total`` and ``_created`` samples for a
counter, cumulative ``_bucket`` samples with ``le``, ``_count``, ``_sum`` and ``_created`` for a
histogram).
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterable, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

Labels = tuple[str, ...]


def _go_float(bound: float) -> str:
    """A bucket bound's ``le`` text, as prometheus-client writes it."""
    text: str = floatToGoString(bound)  # type: ignore[no-untyped-call]
    return text


class _Family(Collector):
    def __init__(self, name: str, documentation: str, labels: Sequence[str]) -> None:
        self.name = name
        self.documentation = documentation
        self.labels = list(labels)
        self._created: dict[Labels, float] = {}

    def describe(self) -> Iterable[Metric]:
        """What the registry checks for name clashes: the family, with no samples."""
        return [self._family()]

    def _family(self) -> Metric:
        raise NotImplementedError


class CounterSeries(_Family):
    """A counter family: ``inc(labels, amount)`` per event.

    Args:
        name: The family name without ``_total``.
        documentation: Its help text.
        labels: Label names, in the order ``inc`` takes their values.
    """

    def __init__(self, name: str, documentation: str, labels: Sequence[str]) -> None:
        super().__init__(name, documentation, labels)
        self._values: dict[Labels, float] = {}

    def inc(self, labels: Labels, amount: float = 1.0) -> None:
        """Add ``amount`` (never negative) to the series of ``labels``."""
        values = self._values
        found = values.get(labels)
        if found is None:
            self._created[labels] = time.time()
            values[labels] = amount
        else:
            values[labels] = found + amount

    def _family(self) -> CounterMetricFamily:
        return CounterMetricFamily(self.name, self.documentation, labels=self.labels)

    def collect(self) -> Iterable[Metric]:
        """The family with one ``_total`` (and ``_created``) sample per series."""
        family = self._family()
        created = self._created
        for labels, value in list(self._values.items()):
            family.add_metric(list(labels), value, created=created.get(labels))
        return [family]


class GaugeSeries(_Family):
    """A gauge family: ``add(labels, amount)`` moves a series up or down."""

    def __init__(self, name: str, documentation: str, labels: Sequence[str]) -> None:
        super().__init__(name, documentation, labels)
        self._values: dict[Labels, float] = {}

    def add(self, labels: Labels, amount: float) -> None:
        """Move the series of ``labels`` by ``amount`` (negative to go down)."""
        self._values[labels] = self._values.get(labels, 0.0) + amount

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(self.name, self.documentation, labels=self.labels)

    def collect(self) -> Iterable[Metric]:
        """The family with one sample per series."""
        family = self._family()
        for labels, value in list(self._values.items()):
            family.add_metric(list(labels), value)
        return [family]


class HistogramSeries(_Family):
    """A histogram family: ``observe(labels, value)`` per event.

    Args:
        name: The family name.
        documentation: Its help text.
        labels: Label names, in the order ``observe`` takes their values.
        buckets: Upper bounds, ascending; ``+Inf`` is added.
    """

    def __init__(
        self, name: str, documentation: str, labels: Sequence[str], buckets: Sequence[float]
    ) -> None:
        super().__init__(name, documentation, labels)
        self._bounds = sorted(float(b) for b in buckets if b != float("inf"))
        self._le = [_go_float(b) for b in self._bounds] + ["+Inf"]
        # Per series: a count per bucket (not cumulative), then the sum of the observed values.
        self._values: dict[Labels, list[float]] = {}

    def observe(self, labels: Labels, value: float) -> None:
        """Count ``value`` in its bucket (a value equal to a bound is in that bound's bucket)."""
        counts = self._values.get(labels)
        if counts is None:
            self._created[labels] = time.time()
            counts = self._values[labels] = [0.0] * (len(self._le) + 1)
        counts[bisect_left(self._bounds, value)] += 1
        counts[-1] += value

    def _family(self) -> HistogramMetricFamily:
        return HistogramMetricFamily(self.name, self.documentation, labels=self.labels)

    def collect(self) -> Iterable[Metric]:
        """The family with cumulative buckets, the sum and the creation time per series."""
        family = self._family()
        created = self._created
        for labels, counts in list(self._values.items()):
            snapshot = list(counts)  # one copy: the buckets and the sum read at one moment
            running = 0.0
            cumulative = []
            for le, count in zip(self._le, snapshot, strict=False):
                running += count
                cumulative.append((le, running))
            family.add_metric(list(labels), cumulative, snapshot[-1])
            created_at = created.get(labels)
            if created_at is not None:
                names = dict(zip(self.labels, labels, strict=True))
                family.add_sample(self.name + "_created", names, created_at)
        return [family]
