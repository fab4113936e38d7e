"""Work that has priority in a process (the event path: consumed events) and the background
work that makes way for it (the matching service's allocation flags). Both share the event loop
and the store: when they run together the store serves them in turns, and an event waits for
the background's writes (measured under `make bench-flow` at 50 needs/s: a consumed batch took
~1 s while the flags were written, the flags being under way ~60% of the time).

`Foreground.wrap` marks a handler's runs; `idle` waits until none runs, for at most a bound: a
steady stream of events never starves the background (it goes on after `max_wait_s`), it only
gives the events the gaps between them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

from prometheus_client import Counter

T = TypeVar("T")
YIELDED = Counter(
    "g60_background_yield_seconds_total", "Seconds background work waited for the event path"
)


class Foreground:
    def __init__(self) -> None:
        self._running = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.waited_s = 0.0  # how long the background waited in all (metrics, tests)

    @property
    def busy(self) -> bool:
        return self._running > 0

    def wrap(self, handler: Callable[[T], Awaitable[None]]) -> Callable[[T], Awaitable[None]]:
        async def run(arg: T) -> None:
            self._running += 1
            self._idle.clear()
            try:
                await handler(arg)
            finally:
                self._running -= 1
                if not self._running:
                    self._idle.set()

        return run

    async def idle(self, max_wait_s: float) -> None:
        """Return once no foreground work runs, or after `max_wait_s` whatever runs."""
        if not self._running:
            return
        loop = asyncio.get_running_loop()
        t = loop.time()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max_wait_s):
                await self._idle.wait()
        waited = loop.time() - t
        self.waited_s += waited
        YIELDED.inc(waited)
