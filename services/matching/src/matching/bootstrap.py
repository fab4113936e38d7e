"""Composition root of the matching service: builds it from settings, with overrides for tests
and for the all-in-one process. The engine lives in memory and is rebuilt from the read model
after a start, while the service already serves and consumes."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from g60_chassis import loop_lag
from g60_chassis.aggregates import Aggregates
from g60_chassis.auth import KeyStore
from g60_chassis.bus import EventBus
from g60_chassis.foreground import Foreground
from g60_chassis.runtime import BuiltService, wire
from g60_chassis.settings import PlatformSettings
from g60_chassis.store import DocumentStore
from g60_chassis.tasks import cancel, every
from matching.adapters import metrics
from matching.adapters.allocator import ChildProcess, InProcess
from matching.adapters.engine import EngineTranslator, engine_version, new_engine
from matching.adapters.events import ContractMatchEvents
from matching.domain.engine import MatchEngine
from matching.domain.match import Match
from matching.entrypoints import api, consumer, dashboard, ops_api
from matching.service.audit import LOG_PACKED, DecisionLog, LoggedDecision
from matching.service.handlers import MatchingService
from matching.service.ports import Allocate, View
from matching.service.readmodel import ReadModel
from matching.service.stats import Stats

log = logging.getLogger(__name__)
NAME = "matching"
INDEXES = [
    ("matches", "project_id"),
    ("matches", "offer_id"),
    ("matches", "status"),
    ("matches", "allocated"),
    ("matches", "expiry_day"),  # the expiry pass's day (service/lifecycle.py)
    ("match_decisions", "match_id"),  # a match's audit record (service/audit.py)
    ("project_views", "enterprise_id"),
    ("enterprise_views", "pending"),
    ("project_views", "pending"),
    ("offer_views", "pending"),
]
COLLECTIONS = ["matches"]
# stored as JSON text (`Aggregates(packed=)`): nested, large, never filtered on
PACKED = ("enterprise_view", "funder_view", "decisions")
VIEW_PACKED = ("data",)  # a view's snapshot; its filtered fields are beside it


@dataclass
class MatchingApp(BuiltService[MatchingService]):
    """The matching service adds two duties to a built service: load the in-memory engine
    after a start, and expire matches whose response deadline passed.

    The engine loads in the background (`service/loading.py`): the service is ready, serves from
    the store and consumes at once; events that arrive meanwhile are kept pending and applied
    when it is loaded. Start waits for the load up to `ready_wait_s`, so a small market (tests,
    a fresh platform) starts with its engine loaded as before."""

    expiry_interval_s: float = 30.0
    ready_wait_s: float = 2.0
    _expiry: asyncio.Task[None] | None = None
    _load: asyncio.Task[None] | None = None
    _lag: asyncio.Task[None] | None = None
    _freeze: asyncio.Task[None] | None = None

    async def prepare(self) -> None:
        self.service.allocation.start()
        self.service.loaded.clear()  # before any consumer runs: their events are kept pending
        self._load = asyncio.create_task(self._load_engine(), name="match-engine-load")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._load), self.ready_wait_s)

    async def _load_engine(self) -> None:
        while True:
            t = time.perf_counter()
            # The load allocates millions of long-lived objects: with the collector on, its full
            # collections scan them again and again, in whichever thread allocates, holding the
            # GIL (an 8.4 s stall of the API was measured at 100,000 x 10,000). Off meanwhile;
            # once loaded they are frozen out of its reach for good (before it is on again: its
            # first collection would otherwise scan them all at once, a 2 s stall).
            gc.disable()
            try:
                count = await self.service.rebuild()
            except Exception:
                gc.enable()
                log.exception("matching: loading the engine failed; retrying")
                await asyncio.sleep(5.0)
                continue
            except BaseException:
                gc.enable()
                raise
            gc.freeze()
            gc.enable()
            log.info(
                "matching: engine loaded %d projects in %.1fs (%d pending views applied)",
                count,
                time.perf_counter() - t,
                self.service.loading.caught_up,
            )
            return

    async def start(self) -> None:
        await super().start()
        # the first pass (a full read of the open matches) at start, not an interval later
        # mid-load; the later ones read by day (`Lifecycle.expire_due`)
        expiry = every(self.expiry_interval_s, self.service.lifecycle.expire_due, "match expiry")
        self._expiry = asyncio.create_task(expiry, name="match-expiry")
        self._lag = asyncio.create_task(loop_lag.watch(), name="loop-lag")
        # the market grows with every need: full collections over it stalled the event loop
        self._freeze = asyncio.create_task(loop_lag.freeze_when_slow(), name="gc-freeze")

    async def stop(self) -> None:
        await cancel(self._expiry, self._load, self._lag, self._freeze)
        await self.service.allocation.stop()
        await self.service.proposals.settling.stop()
        await super().stop()


def _allocator(settings: PlatformSettings) -> Allocate:
    return ChildProcess() if settings.match_allocator == "process" else InProcess()


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
    `allocate`: where the allocation runs; by default as `G60_MATCH_ALLOCATOR` says: a worker
    thread (`InProcess`), or `process` for a child (`ChildProcess`). The child kept GET
    latency flatter at 10,000 × 1,000 (see bench-match) but spawning it during a burst timed
    out the e2e fifty-agreements test on a load-15 machine: opt-in until measured on a quieter
    one."""
    w = wire(NAME, COLLECTIONS, settings, store=store, bus=bus, keys=keys)
    market = engine or new_engine(clock().date(), w.settings.match_top_k)
    read = ReadModel(
        Aggregates(w.store, "enterprise_views", View, packed=VIEW_PACKED),
        Aggregates(w.store, "project_views", View, packed=VIEW_PACKED),
        Aggregates(w.store, "offer_views", View, packed=VIEW_PACKED),
    )
    audit = DecisionLog(
        Aggregates(w.store, "decision_inputs", View, packed=VIEW_PACKED),
        read,
        lambda: (market.version, market.as_of),
        engine_version(),
        clock,
        # the decisions of allocation flags (a field update of the match: `service/flags.py`)
        Aggregates(w.store, "match_decisions", LoggedDecision, packed=LOG_PACKED),
    )
    service = MatchingService(
        # a match's breakdowns and decisions as JSON text: ~3x less FerretDB CPU per match
        Aggregates(w.store, "matches", Match, w.relay.notify, packed=PACKED),
        read,
        market,
        EngineTranslator(),
        ContractMatchEvents(w.settings.topic_matches),
        clock,
        allocate or _allocator(w.settings),
        audit,
    )
    service.allocation.observe = metrics.allocation_run
    metrics.allocation_pending(lambda: service.allocation.pending)
    stats = Stats(service.matches, service.read, service.engine, clock)
    group = w.settings.group(NAME)
    # the allocation's flags make way for consumed events (`service/flags.py`)
    events = service.proposals.foreground = Foreground()
    w.bus.subscribe(
        w.settings.topic_projects,
        group,
        events.wrap(consumer.project_events(service)),
        batch=events.wrap(consumer.project_batches(service)),
    )
    w.bus.subscribe(w.settings.topic_funding, group, events.wrap(consumer.funding_events(service)))
    routers = [api.router(service), ops_api.router(service, stats, audit), dashboard.router(stats)]
    return MatchingApp(w, service, routers, [w.settings.topic_matches], list(INDEXES))
