"""Composition root of the matching service: builds it from settings, with overrides for tests
and for the all-in-one process. The engine lives in memory and is rebuilt from the read model
before the consumers start."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from g60_chassis.aggregates import Aggregates
from g60_chassis.auth import KeyStore
from g60_chassis.bus import EventBus
from g60_chassis.runtime import BuiltService, wire
from g60_chassis.settings import PlatformSettings
from g60_chassis.store import DocumentStore
from matching.adapters.allocator import InProcess
from matching.adapters.engine import EngineTranslator, new_engine
from matching.adapters.events import ContractMatchEvents
from matching.domain.engine import MatchEngine
from matching.domain.match import Match
from matching.entrypoints import api, consumer
from matching.service.handlers import MatchingService
from matching.service.ports import Allocate, View

log = logging.getLogger(__name__)
NAME = "matching"
INDEXES = [
    ("matches", "project_id"),
    ("matches", "offer_id"),
    ("matches", "status"),
    ("matches", "allocated"),
    ("project_views", "enterprise_id"),
]
COLLECTIONS = ["matches"]


@dataclass
class MatchingApp(BuiltService[MatchingService]):
    """The matching service adds two duties to a built service: rebuild the in-memory engine
    before consuming, and expire matches whose response deadline passed."""

    expiry_interval_s: float = 30.0
    _expiry: asyncio.Task[None] | None = None

    async def prepare(self) -> None:
        """Load the engine before the consumers start (see `MatchingService.rebuild`): a
        consumer that waited inside a handler for the engine would miss the group's rebalance
        window after a restart and be fenced (seen in the e2e restart test)."""
        self.service.allocation.start()
        while True:
            t = time.perf_counter()
            try:
                count = await self.service.rebuild()
            except Exception:
                log.exception("matching: loading the engine failed; retrying")
                await asyncio.sleep(5.0)
                continue
            log.info("matching: engine loaded %d projects in %.1fs", count, time.perf_counter() - t)
            # The loaded market is millions of long-lived objects: move them out of the garbage
            # collector's reach, or each full collection scans them all, stalling the event loop
            # for seconds (measured at 100,000 x 10,000 while an allocation result arrived).
            gc.freeze()
            return

    async def _expire_loop(self) -> None:
        while True:
            await asyncio.sleep(self.expiry_interval_s)
            try:
                await self.service.lifecycle.expire_due()
            except Exception:
                log.exception("matching: expiry pass failed")

    async def start(self) -> None:
        await super().start()
        self._expiry = asyncio.create_task(self._expire_loop(), name="match-expiry")

    async def stop(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._expiry
        await self.service.allocation.stop()
        await super().stop()


def bootstrap(
    settings: PlatformSettings | None = None,
    *,
    store: DocumentStore | None = None,
    bus: EventBus | None = None,
    keys: KeyStore | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    engine: MatchEngine | None = None,
    allocate: Allocate | None = None,
) -> MatchingApp:
    """`engine`: one already loaded (benchmarks); by default a new one, loaded on start.
    `allocate`: where the allocation runs; by default a worker thread (`InProcess`).
    `ChildProcess()` kept GET latency flatter at 10,000 × 1,000 (see bench-match) but
    spawning it during a burst timed out the e2e fifty-agreements test on a load-15 machine:
    left opt-in until measured on a quieter one."""
    w = wire(NAME, COLLECTIONS, settings, store=store, bus=bus, keys=keys)
    service = MatchingService(
        Aggregates(w.store, "matches", Match, w.relay.notify),
        Aggregates(w.store, "enterprise_views", View),
        Aggregates(w.store, "project_views", View),
        Aggregates(w.store, "offer_views", View),
        engine or new_engine(clock().date(), w.settings.match_top_k),
        EngineTranslator(),
        ContractMatchEvents(w.settings.topic_matches),
        clock,
        allocate or InProcess(),
    )
    group = w.settings.group(NAME)
    w.bus.subscribe(
        w.settings.topic_projects,
        group,
        consumer.project_events(service),
        batch=consumer.project_batches(service),
    )
    w.bus.subscribe(w.settings.topic_funding, group, consumer.funding_events(service))
    return MatchingApp(w, service, [api.router(service)], [w.settings.topic_matches], list(INDEXES))
