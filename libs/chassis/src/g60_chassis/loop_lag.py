"""How late the event loop runs what is due: a task that sleeps `interval_s` and records how
much later than asked it woke (`g60_loop_lag_seconds` on `/metrics`). Every event waiting in a
handler or a poll waits that long too, so `make bench-flow` prints it beside the consumer's
waits: a long synchronous section (a snapshot copy, a collection of the garbage collector, a
thread holding the GIL) shows here and nowhere else. The garbage collector's own passes are
timed beside it (`g60_gc_seconds`, by generation), so a stall can be told apart from one.

`freeze_if_slow`: a process whose long-lived objects keep growing (the matcher's market: each
need adds its project's objects) pays for each full collection in proportion to all of them,
on the event loop (bench-flow at 60 needs/s: 4 full collections in 13 s, 157 ms mean, up to
500 ms). Once a full collection was that slow, what survives is moved out of the collector's
reach (`gc.freeze`, as the engine's load already does): later full passes scan only what came
since. The price: a reference cycle among frozen objects that later becomes garbage is never
collected (reference counting still frees everything else); a freeze at most every `every_s`
bounds it to what such cycles were alive at those moments."""

from __future__ import annotations

import asyncio
import functools
import gc
import time
from typing import Any

from prometheus_client import Histogram

LAG = Histogram(
    "g60_loop_lag_seconds",
    "How much later than due a sleeping task woke",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0),
)
GC = Histogram(
    "g60_gc_seconds",
    "The garbage collector's passes",
    ["generation"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0),
)


_slowest_full = [0.0]  # the slowest full collection since the last freeze, in seconds


@functools.cache
def time_collections() -> None:
    """Time every pass of the garbage collector (once per process)."""
    started = [0.0]

    def timed(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
            return
        took = time.perf_counter() - started[0]
        GC.labels(str(info["generation"])).observe(took)
        if info["generation"] == 2:
            _slowest_full[0] = max(_slowest_full[0], took)

    gc.callbacks.append(timed)


async def watch(interval_s: float = 0.1) -> None:
    time_collections()
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + interval_s
        await asyncio.sleep(interval_s)
        LAG.observe(max(0.0, loop.time() - due))


def freeze_if_slow(slow_s: float) -> bool:
    """Freeze the collector's survivors if a full collection since the last freeze took at
    least `slow_s` (see the module's doc); True if it did."""
    if _slowest_full[0] < slow_s:
        return False
    _slowest_full[0] = 0.0
    gc.freeze()
    return True


async def freeze_when_slow(slow_s: float = 0.05, every_s: float = 30.0) -> None:
    time_collections()
    while True:
        await asyncio.sleep(every_s)
        freeze_if_slow(slow_s)
