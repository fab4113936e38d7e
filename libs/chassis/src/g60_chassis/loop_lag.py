"""How late the event loop runs what is due: a task that sleeps `interval_s` and records how
much later than asked it woke (`g60_loop_lag_seconds` on `/metrics`). Every event waiting in a
handler or a poll waits that long too, so `make bench-flow` prints it beside the consumer's
waits: a long synchronous section (a snapshot copy, a collection of the garbage collector, a
thread holding the GIL) shows here and nowhere else. The garbage collector's own passes are
timed beside it (`g60_gc_seconds`, by generation), so a stall can be told apart from one."""

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


@functools.cache
def time_collections() -> None:
    """Time every pass of the garbage collector (once per process)."""
    started = [0.0]

    def timed(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            GC.labels(str(info["generation"])).observe(time.perf_counter() - started[0])

    gc.callbacks.append(timed)


async def watch(interval_s: float = 0.1) -> None:
    time_collections()
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + interval_s
        await asyncio.sleep(interval_s)
        LAG.observe(max(0.0, loop.time() - due))
