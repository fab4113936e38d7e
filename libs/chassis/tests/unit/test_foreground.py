"""`Foreground`: background work waits while the event path handles something, and never for
longer than its bound (a steady stream of events must not starve it)."""

from __future__ import annotations

import asyncio

from g60_chassis.foreground import Foreground


async def test_idle_returns_at_once_when_nothing_runs() -> None:
    fg = Foreground()
    await asyncio.wait_for(fg.idle(max_wait_s=3600), 5)
    assert fg.waited_s == 0 and not fg.busy


async def test_idle_waits_for_a_running_handler_to_end() -> None:
    fg = Foreground()
    release, seen = asyncio.Event(), []

    async def handler(event: str) -> None:
        seen.append(event)
        await release.wait()

    running = asyncio.create_task(fg.wrap(handler)("e1"))
    await asyncio.sleep(0)
    assert fg.busy and seen == ["e1"]
    waiting = asyncio.create_task(fg.idle(max_wait_s=3600))
    await asyncio.sleep(0.05)
    assert not waiting.done()  # the handler still runs
    release.set()
    await asyncio.wait_for(waiting, 5)
    await running
    assert not fg.busy


async def test_idle_waits_while_any_of_several_handlers_runs_and_a_failure_still_ends_one() -> None:
    fg = Foreground()
    first, second = asyncio.Event(), asyncio.Event()

    async def fails(gate: asyncio.Event) -> None:
        await gate.wait()
        raise ValueError("bad event")

    async def ok(gate: asyncio.Event) -> None:
        await gate.wait()

    a = asyncio.create_task(fg.wrap(fails)(first))
    b = asyncio.create_task(fg.wrap(ok)(second))
    await asyncio.sleep(0)
    waiting = asyncio.create_task(fg.idle(max_wait_s=3600))
    first.set()
    await asyncio.gather(a, return_exceptions=True)
    await asyncio.sleep(0.02)
    assert fg.busy and not waiting.done()  # one still runs
    second.set()
    await asyncio.wait_for(waiting, 5)
    await b
    assert not fg.busy


async def test_a_handler_that_keeps_running_holds_the_background_only_up_to_the_bound() -> None:
    fg = Foreground()
    never = asyncio.Event()

    async def endless(event: str) -> None:
        await never.wait()

    running = asyncio.create_task(fg.wrap(endless)("e1"))
    await asyncio.sleep(0)
    await asyncio.wait_for(fg.idle(max_wait_s=0.05), 5)  # returned although still busy
    assert fg.busy and fg.waited_s > 0
    running.cancel()
