"""Background tasks a component starts and must stop: cancel them and wait until they are gone."""

from __future__ import annotations

import asyncio
import logging
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
