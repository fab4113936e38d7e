"""`loop_lag.watch`: a section that holds the event loop shows as lag, and the collector's
passes are timed by generation."""

from __future__ import annotations

import asyncio
import gc
import time

from g60_chassis import loop_lag


def _count(histogram: object, **labels: str) -> float:
    for metric in histogram.collect():  # type: ignore[attr-defined]
        for s in metric.samples:
            if s.name.endswith("_count") and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


def _sum(histogram: object) -> float:
    for metric in histogram.collect():  # type: ignore[attr-defined]
        for s in metric.samples:
            if s.name.endswith("_sum"):
                return float(s.value)
    return 0.0


async def test_a_blocked_loop_shows_as_lag_and_full_collections_are_timed() -> None:
    lag_before, gc_before = _sum(loop_lag.LAG), _count(loop_lag.GC, generation="2")
    watching = asyncio.create_task(loop_lag.watch(interval_s=0.01))
    await asyncio.sleep(0.02)
    time.sleep(0.2)  # noqa: ASYNC251 - a synchronous section holding the loop, on purpose
    await asyncio.sleep(0.03)
    gc.collect()
    watching.cancel()
    assert _sum(loop_lag.LAG) - lag_before >= 0.15  # at least the section's length, late
    assert _count(loop_lag.GC, generation="2") > gc_before


def test_survivors_are_frozen_only_after_a_slow_full_collection() -> None:
    loop_lag.time_collections()
    frozen = gc.get_freeze_count()
    try:
        loop_lag._slowest_full[0] = 0.0
        assert not loop_lag.freeze_if_slow(slow_s=3600.0)
        assert gc.get_freeze_count() == frozen
        gc.collect()  # a full collection, however fast, is recorded
        assert loop_lag._slowest_full[0] > 0
        assert loop_lag.freeze_if_slow(slow_s=0.0)
        assert gc.get_freeze_count() > frozen
        assert loop_lag._slowest_full[0] == 0.0  # counted again from the freeze
        assert not loop_lag.freeze_if_slow(slow_s=3600.0)
    finally:
        gc.unfreeze()
