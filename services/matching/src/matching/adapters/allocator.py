"""Where the allocation runs: a worker thread (`InProcess`, the default) or one child process
(`ChildProcess`, `G60_MATCH_ALLOCATOR=process`). Why a child helps at corridor scale: besides
the compiled deferred acceptance the allocation still runs Python (preference lists, repair
bookkeeping), which in a thread holds the service's GIL and triggers its garbage collections
over every object of the loaded market (pauses of a second and more were measured at 100,000 ×
10,000 with a thread). Either way the kernels are compiled (or loaded from numba's cache) as it
starts (`warm_up`). The snapshot goes over through shared memory (`shared.py`: pickled, it held
the GIL for half a second), and the allocation comes back as numpy columns (`Allocation`: a few
objects for the service's collector, not one per assignment). The thread stays the default:
spawning the child during a burst of events timed out an e2e test on a load-15 machine
(`bootstrap.py`).

Both keep the deferred-acceptance state between runs (`MarketAllocation`, where the allocation
runs: in the child, a module-level one), so a run after a few changes continues from the last
one instead of starting over."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from matching.adapters.shared import Shipped, land, ship
from matching.domain.allocation import warm_up
from matching.domain.market import MarketAllocation
from matching.domain.results import Allocation
from matching.domain.snapshot import MarketSnapshot

log = logging.getLogger(__name__)
_KEPT = MarketAllocation()  # in the child process: the state kept between runs


def _allocate(shipped: Shipped) -> Allocation:
    return _KEPT(land(shipped))


def _ready() -> None:
    """Run in the child to start it: imports the engine and compiles the allocation's kernels
    (or loads them from numba's cache), so that the first allocation does not wait for them."""
    warm_up()


class InProcess:
    """In a worker thread of this process (runs never overlap: the refresher awaits each)."""

    def __init__(self) -> None:
        self.kept = MarketAllocation()
        self._warm: threading.Thread | None = None

    async def __call__(self, snapshot: MarketSnapshot) -> Allocation:
        return await asyncio.to_thread(self._run, snapshot)

    def _run(self, snapshot: MarketSnapshot) -> Allocation:
        if self._warm is not None:
            self._warm.join()  # (the kernels are being compiled or loaded)
        return self.kept(snapshot)

    def start(self) -> None:
        """Compile or load the allocation's kernels in a thread now (returns at once)."""
        if self._warm is None:
            self._warm = threading.Thread(target=warm_up, name="allocation-warm-up", daemon=True)
            self._warm.start()

    def close(self) -> None:
        return None


def _orphan_watch(parent: int) -> None:
    """In the child: exit when the service that started it is gone (even killed -9)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="orphan-watch", daemon=True).start()


class ChildProcess:
    """In one child process, started by `start` (the service's prepare: a spawn takes seconds,
    not to be paid by the first allocation during a burst of events) and kept; it exits with
    the service. A child that died (killed, out of memory) breaks the pool: the run is retried
    once in a new child (which starts its deferred-acceptance state over: a full run); if that
    breaks too, this and every later run go to a worker thread, with a warning logged."""

    def __init__(self) -> None:
        self._pool: Executor | None = None
        self.fallback: InProcess | None = None  # set once the child could not be kept

    def _new_pool(self) -> Executor:
        return ProcessPoolExecutor(
            1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_orphan_watch,
            initargs=(os.getpid(),),
        )

    def _ensure(self) -> Executor:
        if self._pool is None:
            self._pool = self._new_pool()
        return self._pool

    def start(self) -> None:
        """Spawn the child now (its imports included); returns at once."""
        if self.fallback is None:
            self._ensure().submit(_ready)

    async def __call__(self, snapshot: MarketSnapshot) -> Allocation:
        if self.fallback is not None:
            return await self.fallback(snapshot)
        loop = asyncio.get_running_loop()
        shipped, block = await ship(snapshot)
        try:
            for attempt in range(2):
                try:
                    return await loop.run_in_executor(self._ensure(), _allocate, shipped)
                except BrokenProcessPool:
                    self.close()  # a broken pool takes no more work: the next spawns anew
                    if attempt == 0:
                        log.warning(
                            "matching: the allocation's child process died; starting another"
                        )
        finally:
            block.close()
            block.unlink()
        log.warning(
            "matching: the allocation's child process died twice in a row; "
            "allocating in a worker thread from now on"
        )
        self.fallback = InProcess()
        return await self.fallback(snapshot)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
