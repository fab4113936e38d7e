"""The allocation's child process: started ahead of the first run, replaced once when it dies,
and given up for a worker thread when its replacement dies too."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from concurrent.futures import Executor, Future
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import pytest

from g60_chassis.auth import KeyStore
from g60_chassis.bus import MemoryBus
from g60_chassis.memory_store import MemoryDocumentStore
from g60_chassis.settings import PlatformSettings
from matching.adapters.allocator import ChildProcess, InProcess
from matching.bootstrap import bootstrap
from matching.domain.market import allocate_market
from services.matching.tests.unit.factories import engine, offer, project


def _market() -> Any:
    e = engine(
        offer("off-1", max_deals=1),
        offer("off-2", max_deals=5, pricing={"rate_bp": 440}),
        project("prj-1"),
        project("prj-2", enterprise_kw={"city": "jiaxing"}),
    )
    assert len(allocate_market(e.snapshot()).assignments) == 2  # both allocated: not trivial
    return e.snapshot()


class _Broken(Executor):
    """A pool whose child is gone: every submission fails as a dead child's does."""

    def __init__(self) -> None:
        self.submitted = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.submitted += 1
        done: Future[Any] = Future()
        done.set_exception(BrokenProcessPool("a child process terminated abruptly"))
        return done


class _Dies(ChildProcess):
    """Its pools die `deaths` times, then real child processes follow."""

    def __init__(self, deaths: int) -> None:
        super().__init__()
        self.deaths, self.pools = deaths, 0

    def _new_pool(self) -> Executor:
        self.pools += 1
        return _Broken() if self.pools <= self.deaths else super()._new_pool()


async def test_a_killed_child_is_replaced_and_the_run_succeeds() -> None:
    snapshot = _market()
    child = ChildProcess()
    try:
        child.start()  # spawned ahead of the first run
        first = await child(snapshot)
        assert first.as_map() == allocate_market(snapshot).as_map()
        pool = child._pool
        assert pool is not None
        pids = list(pool._processes)  # type: ignore[attr-defined]
        assert len(pids) == 1
        os.kill(pids[0], signal.SIGKILL)
        again = await child(snapshot)  # the dead child broke the pool: a new one runs it
        assert again.as_map() == first.as_map()
        assert child.fallback is None
        assert child._pool is not pool
    finally:
        child.close()


async def test_a_child_that_dies_once_is_replaced() -> None:
    snapshot = _market()
    child = _Dies(deaths=1)
    try:
        got = await child(snapshot)
        assert got.as_map() == allocate_market(snapshot).as_map()
        assert child.pools == 2 and child.fallback is None
    finally:
        child.close()


async def test_a_replacement_that_dies_too_falls_back_to_a_thread(
    caplog: pytest.LogCaptureFixture,
) -> None:
    snapshot = _market()
    child = _Dies(deaths=2)
    got = await child(snapshot)
    assert got.as_map() == allocate_market(snapshot).as_map()
    assert child.fallback is not None and child.pools == 2
    assert "worker thread" in caplog.text
    later = await child(snapshot)  # no third child: the thread from now on
    assert later.as_map() == got.as_map() and child.pools == 2
    child.start()  # nothing to start any more
    assert child.pools == 2


@pytest.mark.parametrize(("setting", "kind"), [("thread", InProcess), ("process", ChildProcess)])
def test_the_setting_chooses_where_the_allocation_runs(setting: str, kind: type) -> None:
    app = bootstrap(
        PlatformSettings(store="memory", match_allocator=setting),
        store=MemoryDocumentStore(),
        bus=MemoryBus(),
        keys=KeyStore(MemoryDocumentStore()),
    )
    assert type(app.service.allocation.allocate) is kind  # built, not started: nothing spawned
