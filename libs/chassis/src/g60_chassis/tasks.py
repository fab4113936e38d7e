"""Background tasks a component starts and must stop: a pass repeated at an interval (`every`);
cancel them and wait until they are gone (`cancel`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)


async def cancel(*tasks: asyncio.Task[Any] | None) -> None:
    """Cancel these tasks (None: not started) and wait for each to end. A task that had
    already failed is logged, not raised: stopping goes on with the rest."""
    running = [t for t in tasks if t is not None]
    for task in running:
        task.cancel()
    for task in running:
        try:
            await task
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("task %s had failed before it was stopped", task.get_name())


async def every(seconds: float, work: Callable[[], Awaitable[object]], what: str) -> None:
    """Run `work` now, then `seconds` after each pass ends, until cancelled. A failed pass (the
    store or the broker down) is logged as `what` and the next one catches up."""
    while True:
        try:
            await work()
        except Exception:
            log.exception("%s failed; next pass in %.0f s", what, seconds)
        await asyncio.sleep(seconds)
