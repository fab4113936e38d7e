"""The capacity-aware allocation, kept up to date beside the event path.

A change marks the allocation stale; after a quiet `debounce_s` (changes arriving meanwhile are
folded into the same run) the engine's state is copied at its current market version (on the
event loop, in slices with HTTP and the consumers running between them; still of one version),
the allocation is computed from the copy in a child process or a worker thread (seconds, while
HTTP and the consumers go on), adopted by the engine, and the `allocated` flag of every match
whose pair entered or left it is updated. If the market changed meanwhile, the next run starts
at once. `version`: the market version of the newest applied.
Where the allocation runs (`Allocate`), the deferred-acceptance state is kept between runs
(`MarketAllocation`), so a run after a few changes continues from the last one: well under a
second at 100,000 × 10,000 instead of the batch's tens of seconds (see docs/matching-engine.md)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from g60_chassis.tasks import cancel
from matching.domain.results import Allocation
from matching.domain.snapshot import MarketSnapshot
from matching.service.ports import Allocate, Engine

log = logging.getLogger(__name__)
Apply = Callable[[Allocation], Awaitable[int]]  # sets the flags it moved; returns how many
Observe = Callable[[dict[str, float]], None]  # a run's seconds by phase (metrics)


class AllocationRefresher:
    def __init__(
        self,
        engine: Engine,
        allocate: Allocate,
        apply: Apply,
        debounce_s: float = 0.5,
        observe: Observe | None = None,
    ) -> None:
        self.engine, self.allocate, self.apply, self.debounce_s = (
            engine,
            allocate,
            apply,
            debounce_s,
        )
        self.version: int | None = None
        self.runs = 0
        self.timings: dict[str, float] = {}  # of the last run, in seconds
        self.observe = observe
        self._stale = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None

    def changed(self) -> None:
        self._stale.set()
        self._idle.clear()

    async def refresh(self) -> Allocation:
        """One run now: copy, allocate in a worker thread, adopt, update the flags."""
        t0 = time.perf_counter()
        snapshot = await self._snapshot()
        t1 = time.perf_counter()
        allocation = await self.allocate(snapshot)
        t2 = time.perf_counter()
        for _ in allocation.make_map():  # its map in slices: HTTP and consumers run between
            await asyncio.sleep(0)
        self.engine.adopt(allocation)
        moved = await self.apply(allocation)
        t3 = time.perf_counter()
        self.timings = {"snapshot": t1 - t0, "allocate": t2 - t1, "flags": t3 - t2}
        if self.observe is not None:
            self.observe(self.timings)
        self.version = allocation.market_version
        self.runs += 1
        log.info(
            "matching: allocation at market version %d: %d assignments, %d flags moved, "
            "%d blocking pairs",
            allocation.market_version,
            allocation.project_ids.size,  # not `assignments`: ~78,000 objects made for a count
            moved,
            len(allocation.blocking),
        )
        return allocation

    async def _snapshot(self) -> MarketSnapshot:
        """The engine's copy in slices, HTTP and the consumers running between them (one copy
        in one go was the refresh's longest stall of the event loop: 0.1–0.3 s at full size)."""
        for step in self.engine.snapshot_in_slices():
            if step is not None:
                return step
            await asyncio.sleep(0)
        raise AssertionError("a snapshot's slices end with the snapshot")

    async def _loop(self) -> None:
        while True:
            await self._stale.wait()
            await asyncio.sleep(self.debounce_s)
            self._stale.clear()
            try:
                await self.refresh()
            except Exception:
                log.exception("matching: allocation run failed (retried on the next change)")
            if not self._stale.is_set():
                self._idle.set()

    @property
    def pending(self) -> bool:
        """A change not yet allocated, or a run (flags included) under way."""
        return not self._idle.is_set()

    async def settled(self) -> None:
        """Wait until no run is pending (tests and benchmarks)."""
        await self._idle.wait()

    def start(self) -> None:
        if self._task is None:
            self.allocate.start()
            self._task = asyncio.create_task(self._loop(), name="match-allocation")

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None
        self.allocate.close()
