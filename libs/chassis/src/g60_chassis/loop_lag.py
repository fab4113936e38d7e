"""How late the event loop runs what is due: a task that sleeps `interval_s` and records how
much later than asked it woke (`g60_loop_lag_seconds` on `/metrics`). Every event waiting in a
handler or a poll waits that long too, so `make bench-flow` prints it beside the consumer's
waits: a long synchronous section (a snapshot copy, a collection of the garbage collector, a
thread holding the GIL) shows here and nowhere else."""

from __future__ import annotations

import asyncio

from prometheus_client import Histogram

LAG = Histogram(
    "g60_loop_lag_seconds",
    "How much later than due a sleeping task woke",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0),
)


async def watch(interval_s: float = 0.1) -> None:
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + interval_s
        await asyncio.sleep(interval_s)
        LAG.observe(max(0.0, loop.time() - due))
