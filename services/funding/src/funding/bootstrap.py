"""Composition root of the funding service: builds it from settings, with overrides for tests
and for the all-in-one process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fastapi import APIRouter

from funding.adapters.events import ContractFundingEvents
from funding.domain.model import Funder, Offer
from funding.entrypoints import api, consumer
from funding.service.handlers import FundingService
from g60_chassis.aggregates import Aggregates
from g60_chassis.auth import KeyStore
from g60_chassis.bus import EventBus
from g60_chassis.outbox import OutboxRelay
from g60_chassis.runtime import make_bus, make_keys, make_store
from g60_chassis.settings import PlatformSettings
from g60_chassis.store import DocumentStore

NAME = "funding"
INDEXES = [("offers", "funder_id"), ("offers", "status")]
COLLECTIONS = ["funders", "offers"]


@dataclass
class FundingApp:
    settings: PlatformSettings
    store: DocumentStore
    bus: EventBus
    keys: KeyStore
    relay: OutboxRelay
    service: FundingService
    routers: list[APIRouter] = field(default_factory=list)
    publishes: list[str] = field(default_factory=list)
    indexes: list[tuple[str, str]] = field(default_factory=lambda: list(INDEXES))

    async def start(self) -> None:
        await self.relay.start()

    async def stop(self) -> None:
        await self.relay.stop()

    async def ready(self) -> bool:
        return await self.store.ping()


def bootstrap(
    settings: PlatformSettings | None = None,
    *,
    store: DocumentStore | None = None,
    bus: EventBus | None = None,
    keys: KeyStore | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> FundingApp:
    settings = settings or PlatformSettings()
    store = store or make_store(settings, NAME)
    bus = bus or make_bus(settings, NAME)
    keys = keys or make_keys(settings)
    relay = OutboxRelay(store, bus, COLLECTIONS, interval_s=settings.outbox_interval_s)
    service = FundingService(
        Aggregates(store, "funders", Funder, relay.notify),
        Aggregates(store, "offers", Offer, relay.notify),
        ContractFundingEvents(settings.topic_funding),
        clock,
    )
    bus.subscribe(settings.topic_matches, settings.group(NAME), consumer.match_events(service))
    return FundingApp(
        settings,
        store,
        bus,
        keys,
        relay,
        service,
        routers=[api.router(service)],
        publishes=[settings.topic_funding],
    )
