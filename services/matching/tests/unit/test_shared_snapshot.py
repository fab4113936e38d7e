"""The snapshot through shared memory (the child process's way) lands as it was shipped: every
array, dtype and id (free rows' None included); the block is gone once the run is over."""

from __future__ import annotations

from multiprocessing.shared_memory import SharedMemory

import pytest
from hypothesis import given

from matching.adapters import allocator
from matching.adapters.allocator import ChildProcess
from matching.adapters.shared import Shipped, land, ship
from matching.domain.engine import MatchEngine
from matching.domain.market import allocate_market
from matching.domain.snapshot import MarketSnapshot
from services.matching.tests.unit.factories import AS_OF, engine, offer, project
from services.matching.tests.unit.test_incremental_allocation import SETTINGS, Op, histories
from services.matching.tests.unit.test_snapshot_slices import played, same


@SETTINGS
@given(histories(equal=False))
async def test_a_shipped_snapshot_lands_as_it_was(ops: list[Op]) -> None:
    await lands_as_it_was(played(ops).snapshot())


async def test_an_empty_market_lands_too() -> None:
    await lands_as_it_was(MatchEngine(AS_OF).snapshot())


async def lands_as_it_was(snapshot: MarketSnapshot) -> None:
    shipped, block = await ship(snapshot)
    try:
        same(land(shipped), snapshot)
    finally:
        block.close()
        block.unlink()


async def test_the_child_allocates_what_was_shipped_and_the_block_goes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    e = engine(
        offer("off-1", max_deals=1),
        project("prj-1"),
        project("prj-2", enterprise_kw={"city": "jiaxing"}),
    )
    snapshot, names = e.snapshot(), []

    async def spy(s: MarketSnapshot) -> tuple[Shipped, SharedMemory]:
        shipped, block = await ship(s)
        names.append(block.name)
        return shipped, block

    monkeypatch.setattr(allocator, "ship", spy)
    child = ChildProcess()
    try:
        got = await child(snapshot)
    finally:
        child.close()
    assert got.as_map() == allocate_market(snapshot).as_map() and got.as_map()
    with pytest.raises(FileNotFoundError):  # unlinked once the run was over
        SharedMemory(name=names[0])
