"""Composition root of the funding service: builds it from settings, with overrides for tests
and for the all-in-one process."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from funding.adapters.events import ContractFundingEvents
from funding.domain.model import Funder, Offer
from funding.entrypoints import api, consumer
from funding.service.handlers import FundingService
from g60_chassis.aggregates import Aggregates
from g60_chassis.auth import KeyStore
from g60_chassis.bus import EventBus
from g60_chassis.runtime import BuiltService, wire
from g60_chassis.settings import PlatformSettings
from g60_chassis.store import DocumentStore
from g60_contracts.enums import Role

NAME = "funding"
COLLECTIONS = ["funders", "offers"]
INDEXES = [("offers", "funder_id"), ("offers", "status")]
FundingApp = BuiltService[FundingService]


def bootstrap(
    settings: PlatformSettings | None = None,
    *,
    store: DocumentStore | None = None,
    bus: EventBus | None = None,
    keys: KeyStore | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> FundingApp:
    w = wire(NAME, COLLECTIONS, settings, store=store, bus=bus, keys=keys)
    service = FundingService(
        Aggregates(w.store, "funders", Funder, w.relay.notify),
        Aggregates(w.store, "offers", Offer, w.relay.notify),
        ContractFundingEvents(w.settings.topic_funding),
        clock,
    )
    w.bus.subscribe(
        w.settings.topic_matches,
        w.settings.group(NAME),
        consumer.match_events(service),
        types=consumer.TYPES,
    )
    return BuiltService(
        w,
        service,
        [api.router(service)],
        [w.settings.topic_funding],
        list(INDEXES),
        tenants={Role.funder: service.funder_exists},
    )
