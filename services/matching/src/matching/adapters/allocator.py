"""Where the allocation runs. In a child process by default: the deferred acceptance is pure
Python, so in a thread it would hold the service's GIL for seconds at a time and trigger its
garbage collections over every object of the loaded market (pauses of a second and more were
measured at 100,000 × 10,000 with a thread). The snapshot goes over as numpy buffers; the
allocation comes back as plain dataclasses. A thread is kept for tests and the memory store.

Both keep the deferred-acceptance state between runs (`MarketAllocation`, where the allocation
runs: in the child, a module-level one), so a run after a few changes continues from the last
one instead of starting over."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor

from matching.domain.market import MarketAllocation
from matching.domain.results import Allocation
from matching.domain.snapshot import MarketSnapshot

_KEPT = MarketAllocation()  # in the child process: the state kept between runs


def _allocate(snapshot: MarketSnapshot) -> Allocation:
    return _KEPT(snapshot)


class InProcess:
    """In a worker thread of this process (runs never overlap: the refresher awaits each)."""

    def __init__(self) -> None:
        self.kept = MarketAllocation()

    async def __call__(self, snapshot: MarketSnapshot) -> Allocation:
        return await asyncio.to_thread(self.kept, snapshot)

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
    """In one child process, started on the first run and kept; it exits with the service."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None

    async def __call__(self, snapshot: MarketSnapshot) -> Allocation:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_orphan_watch,
                initargs=(os.getpid(),),
            )
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, _allocate, snapshot)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
