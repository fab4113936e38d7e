"""Background tasks: a pass repeated at an interval survives a failed pass; stopping cancels and
awaits, a failed one logged, none started is fine."""

from __future__ import annotations

import asyncio
import logging

import pytest

from g60_chassis.tasks import cancel, every
from tests.polling import eventually


async def test_running_tasks_are_cancelled_and_awaited() -> None:
    async def forever() -> None:
        await asyncio.Event().wait()

    a, b = asyncio.create_task(forever()), asyncio.create_task(forever())
    await asyncio.sleep(0)
    await cancel(a, None, b)
    assert a.cancelled() and b.cancelled()


async def test_a_task_that_had_failed_is_logged_and_the_others_still_stop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def fails() -> None:
        raise RuntimeError("boom")

    async def forever() -> None:
        await asyncio.Event().wait()

    failed = asyncio.create_task(fails(), name="failing-loop")
    running = asyncio.create_task(forever())
    await asyncio.sleep(0)
    with caplog.at_level(logging.ERROR):
        await cancel(failed, running)
    assert running.cancelled()
    assert "failing-loop" in caplog.text and "boom" in caplog.text


async def test_a_failed_pass_is_logged_and_the_next_one_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    passes: list[int] = []

    async def work() -> None:
        passes.append(len(passes))
        if len(passes) == 1:
            raise RuntimeError("store down")

    task = asyncio.create_task(every(0.01, work, "the test's pass"))
    await eventually(lambda: len(passes) >= 3)
    await cancel(task)
    assert task.cancelled()
    [record] = [r for r in caplog.records if "the test's pass failed" in r.getMessage()]
    assert record.exc_info is not None and "store down" in str(record.exc_info[1])
