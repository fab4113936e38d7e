"""The allocation's runs on `/metrics`: how many, and the seconds of each phase (`snapshot` on
the event loop, `allocate` in its worker, `flags` written beside the event path), which
`make bench-flow` prints per step next to the consumer's waits."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import Counter, Gauge

RUNS = Counter("g60_allocation_runs_total", "Allocation runs")
SECONDS = Counter("g60_allocation_seconds_total", "Seconds spent in allocation runs", ["phase"])
PENDING = Gauge(
    "g60_allocation_pending",
    "1 while a change awaits the allocation or a run (flags too) is under way",
)


def allocation_run(timings: dict[str, float]) -> None:
    RUNS.inc()
    for phase, seconds in timings.items():
        SECONDS.labels(phase).inc(seconds)


def allocation_pending(pending: Callable[[], bool]) -> None:
    """Read at each scrape (`make bench-flow` waits for 0 before its half-load step)."""
    PENDING.set_function(lambda: float(pending()))
