"""Composition root of the matching service: builds it from settings, with overrides for tests
and for the all-in-one process. The engine lives in memory and is rebuilt from the read model
before the consumers start."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fastapi import APIRouter

from g60_chassis.aggregates import Aggregates
from g60_chassis.auth import KeyStore
from g60_chassis.bus import EventBus
from g60_chassis.outbox import OutboxRelay
from g60_chassis.runtime import make_bus, make_keys, make_store
from g60_chassis.settings import PlatformSettings
from g60_chassis.store import DocumentStore
from matching.adapters.engine import EngineTranslator, new_engine
from matching.adapters.events import ContractMatchEvents
from matching.domain.match import Match
from matching.entrypoints import api, consumer
from matching.service.handlers import MatchingService
from matching.service.ports import View

log = logging.getLogger(__name__)
NAME = "matching"
INDEXES = [
    ("matches", "project_id"),
    ("matches", "offer_id"),
    ("matches", "status"),
    ("project_views", "enterprise_id"),
]
COLLECTIONS = ["matches"]


@dataclass
class MatchingApp:
    settings: PlatformSettings
    store: DocumentStore
    bus: EventBus
    keys: KeyStore
    relay: OutboxRelay
    service: MatchingService
    routers: list[APIRouter] = field(default_factory=list)
    publishes: list[str] = field(default_factory=list)
    indexes: list[tuple[str, str]] = field(default_factory=lambda: list(INDEXES))
    expiry_interval_s: float = 30.0
    _expiry: asyncio.Task[None] | None = None

    async def prepare(self) -> None:
        count = await self.service.rebuild()
        log.info("matching: engine rebuilt from %d projects", count)

    async def _expire_loop(self) -> None:
        while True:
            await asyncio.sleep(self.expiry_interval_s)
            try:
                await self.service.expire_due()
            except Exception:
                log.exception("matching: expiry pass failed")

    async def start(self) -> None:
        await self.relay.start()
        self._expiry = asyncio.create_task(self._expire_loop(), name="match-expiry")

    async def stop(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._expiry
        await self.relay.stop()


def bootstrap(
    settings: PlatformSettings | None = None,
    *,
    store: DocumentStore | None = None,
    bus: EventBus | None = None,
    keys: KeyStore | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> MatchingApp:
    settings = settings or PlatformSettings()
    store = store or make_store(settings, NAME)
    bus = bus or make_bus(settings, NAME)
    keys = keys or make_keys(settings)
    relay = OutboxRelay(store, bus, COLLECTIONS, interval_s=settings.outbox_interval_s)
    service = MatchingService(
        Aggregates(store, "matches", Match, relay.notify),
        Aggregates(store, "enterprise_views", View),
        Aggregates(store, "project_views", View),
        Aggregates(store, "offer_views", View),
        new_engine(clock().date(), settings.match_top_k),
        EngineTranslator(),
        ContractMatchEvents(settings.topic_matches),
        clock,
    )
    group = settings.group(NAME)
    bus.subscribe(settings.topic_projects, group, consumer.project_events(service))
    bus.subscribe(settings.topic_funding, group, consumer.funding_events(service))
    return MatchingApp(
        settings,
        store,
        bus,
        keys,
        relay,
        service,
        routers=[api.router(service)],
        publishes=[settings.topic_matches],
    )
