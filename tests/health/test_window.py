from __future__ import annotations

import random

import pytest

from podium.health.window import RollingCounts, RollingWindow, WindowTotals, latency_bin


def test_percentiles_are_close_to_the_exact_ones() -> None:
    rng = random.Random(5)
    samples = [rng.lognormvariate(5, 0.8) for _ in range(5000)]
    w = RollingWindow(60)
    for s in samples:
        w.success(10.0, s)
    totals = w.totals(10.0)
    exact = sorted(samples)
    for q in (0.5, 0.95, 0.99):
        assert totals.percentile(q) == pytest.approx(exact[int(q * len(exact)) - 1], rel=0.13)
    assert totals.avg_latency_ms == pytest.approx(sum(samples) / len(samples))


def test_old_buckets_slide_out_of_the_window() -> None:
    w = RollingWindow(60, buckets=6)
    w.failure(0.0, "ProviderTimeout", fault=True)
    w.success(30.0, 100)
    assert w.totals(59.0).attempts == 2
    assert w.totals(65.0).attempts == 1  # the first bucket [0, 10) left the window
    assert w.totals(200.0).attempts == 0


def test_counts_slide_out_of_the_window_and_reuse_their_slices() -> None:
    w = RollingCounts(60, buckets=6)
    w.fault(0.0)
    w.success(30.0)
    w.success(31.0)
    assert w.totals(59.0) == (2, 1)
    assert w.totals(65.0) == (2, 0)  # the first slice [0, 10) left the window
    w.fault(125.0)  # slice 12 reuses slice 0's place: its old fault is not counted again
    assert w.totals(125.0) == (0, 1)
    w.clear()
    assert w.totals(125.0) == (0, 0)


def test_error_rate_ignores_callers_errors_and_counts_by_class() -> None:
    w = RollingWindow(60)
    w.success(1, 10)
    w.failure(1, "ProviderUnavailable", fault=True)
    w.failure(1, "ProviderBadRequest", fault=False)
    t = w.totals(1)
    assert (t.attempts, t.error_rate) == (3, 0.5)
    assert t.errors == {"ProviderUnavailable": 1, "ProviderBadRequest": 1}


def test_wire_round_trip_and_merge() -> None:
    w = RollingWindow(60)
    w.success(5, 250)
    w.failure(5, "ProviderTimeout", fault=True)
    t = w.totals(5)
    back = WindowTotals.from_wire(t.to_wire())
    assert back == t
    back.add(t)
    assert (back.attempts, back.faults, back.percentile(0.5)) == (4, 2, pytest.approx(t.percentile(0.5)))


def test_latency_bins_grow_geometrically() -> None:
    assert latency_bin(0.5) == 0
    assert latency_bin(1.0) == 1
    assert latency_bin(100) < latency_bin(126) < latency_bin(158)
    assert latency_bin(10**12) == latency_bin(10**13)  # one overflow bin
