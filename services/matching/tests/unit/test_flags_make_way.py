"""The allocation's flags make way for the event path (issue 8: at 50 needs/s a consumed batch
took ~1 s while flags were being written beside it): a batch of flags waits while a consumed
event is handled, never longer than `yield_s`, and the flags converge either way."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from g60_chassis.foreground import Foreground
from matching.domain.results import Allocation
from matching.service import flags
from services.matching.tests.unit.test_event_store_calls import wide_market
from services.matching.tests.unit.test_store_round_trips import CountingStore
from services.matching.tests.unit.test_use_cases import Market


async def allocated(market: Market) -> Allocation:
    """A newer allocation, adopted by the engine, its flags not written yet."""
    await market.svc.proposals.settling.settled()
    svc = market.svc
    allocation = await svc.allocation.allocate(svc.engine.snapshot())
    svc.engine.adopt(allocation)
    assert allocation.as_map()
    return allocation


async def flags_hold(market: Market, allocation: Allocation) -> None:
    for pid, oid in allocation.as_map().items():
        assert (await market.match(pid, oid)).allocated, (pid, oid)


def flag_calls(store: CountingStore) -> dict[tuple[str, str], int]:
    return {k: n for k, n in store.calls.items() if k[1] == "matches"}


def foreground(market: Market) -> Foreground:
    fg = market.svc.proposals.foreground
    assert fg is not None  # the composition root gives the flags the event path's
    return fg


async def test_flags_wait_while_an_event_is_handled_then_converge() -> None:
    market, store = await wide_market()
    allocation = await allocated(market)
    fg, release = foreground(market), asyncio.Event()
    market.svc.proposals.yield_s = 3600.0

    async def consumed(event: str) -> None:  # an event whose handling takes a while
        await release.wait()

    handling = asyncio.create_task(fg.wrap(consumed)("prj-new"))
    await asyncio.sleep(0)
    store.calls.clear()
    flagging = asyncio.create_task(market.svc.proposals.flag(allocation))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not flagging.done()
    assert flag_calls(store) == {}  # not a read, not a write while the event is handled

    release.set()
    await handling
    moved = await asyncio.wait_for(flagging, 120)
    assert moved == len(allocation.as_map())
    await flags_hold(market, allocation)
    assert flag_calls(store)[("set_fields", "matches")] == 1


async def test_a_steady_stream_of_events_does_not_starve_the_flags() -> None:
    market, _ = await wide_market()
    allocation = await allocated(market)
    fg, never = foreground(market), asyncio.Event()
    market.svc.proposals.yield_s = 0.01

    async def endless(event: str) -> None:
        await never.wait()

    handling = asyncio.create_task(fg.wrap(endless)("prj-new"))
    await asyncio.sleep(0)
    moved = await asyncio.wait_for(market.svc.proposals.flag(allocation), 120)
    assert moved == len(allocation.as_map()) and fg.busy and fg.waited_s > 0
    await flags_hold(market, allocation)
    handling.cancel()


async def test_events_handled_while_the_flags_wait_are_applied_and_the_flags_still_hold() -> None:
    market, _ = await wide_market()
    allocation = await allocated(market)
    fg, release = foreground(market), asyncio.Event()
    market.svc.proposals.yield_s = 3600.0
    events = fg.wrap(market.projects)

    async def first_then_held(event: str) -> None:
        await release.wait()

    held = asyncio.create_task(fg.wrap(first_then_held)("x"))
    await asyncio.sleep(0)
    flagging = asyncio.create_task(market.svc.proposals.flag(allocation))
    await asyncio.sleep(0)
    market.projects = events  # a new project arrives through the wrapped handler meanwhile
    await market.project("prj-late")
    assert (await market.match("prj-late", "off-b")).status == "proposed"
    assert not flagging.done()
    release.set()
    await held
    await asyncio.wait_for(flagging, 120)
    await flags_hold(market, allocation)
    after = await market.svc.allocation.refresh()  # the next run flags the late project too
    await flags_hold(market, after)


async def test_the_decisions_cited_proposals_leave_the_event_loop_between_slices() -> None:
    market, _ = await wide_market()  # 12 allocated projects: more than one slice
    allocation = await allocated(market)
    assert len(allocation.as_map()) > flags.CITE_SLICE
    engine, cited, seen = market.svc.engine, [0], list[int]()
    proposals_of = engine.proposals_of

    def counted(pairs: list[tuple[str, str]], *args: Any, **kw: Any) -> Any:
        cited[0] += len(pairs)
        return proposals_of(pairs, *args, **kw)

    async def other() -> None:  # a consumer's turn of the loop while the flags cite
        while not seen or seen[-1] < len(allocation.as_map()):
            seen.append(cited[0])
            await asyncio.sleep(0)

    engine.proposals_of = counted  # type: ignore[method-assign]
    watching = asyncio.create_task(other())
    await asyncio.sleep(0)
    await market.svc.proposals.flag(allocation)
    watching.cancel()
    assert flags.CITE_SLICE in seen  # the loop ran after the first slice, before the next
    await flags_hold(market, allocation)


async def test_an_event_arriving_while_flags_are_written_holds_the_next_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A batch of flags is what an event can find under way: the ones after it wait."""
    monkeypatch.setattr(flags, "FLAG_BATCH", 8)  # the market's 12 moves in two batches
    market, _ = await wide_market()
    allocation = await allocated(market)
    assert len(allocation.as_map()) > flags.FLAG_BATCH
    fg, release = foreground(market), asyncio.Event()
    market.svc.proposals.yield_s = 3600.0
    matches = market.svc.proposals.matches
    set_fields, written = matches.set_fields, list[int]()
    handling: list[asyncio.Task[None]] = []

    async def consumed(event: str) -> None:
        await release.wait()

    async def arrives_meanwhile(changes: Any, *args: Any, **kw: Any) -> Any:
        written.append(len(changes))
        if not handling:  # an event is consumed while the first batch is written
            handling.append(asyncio.create_task(fg.wrap(consumed)("prj-new")))
            await asyncio.sleep(0)
        return await set_fields(changes, *args, **kw)

    matches.set_fields = arrives_meanwhile  # type: ignore[method-assign]
    flagging = asyncio.create_task(market.svc.proposals.flag(allocation))
    for _ in range(50):
        await asyncio.sleep(0)
    assert written == [flags.FLAG_BATCH] and not flagging.done()  # the next batch waits

    release.set()
    await handling[0]
    await asyncio.wait_for(flagging, 120)
    assert sum(written) == len(allocation.as_map())
    await flags_hold(market, allocation)
