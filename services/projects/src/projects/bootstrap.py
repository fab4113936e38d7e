"""Composition root of the projects service: builds it from settings, with overrides for tests
and for the all-in-one process."""

from __future__ import annotations

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
from projects.adapters.events import ContractProjectEvents
from projects.domain.model import Enterprise, Project
from projects.entrypoints import api, consumer
from projects.service.handlers import ProjectsService

NAME = "projects"
INDEXES = [("projects", "enterprise_id"), ("projects", "status"), ("enterprises", "uscc")]
COLLECTIONS = ["enterprises", "projects"]


@dataclass
class ProjectsApp:
    settings: PlatformSettings
    store: DocumentStore
    bus: EventBus
    keys: KeyStore
    relay: OutboxRelay
    service: ProjectsService
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
) -> ProjectsApp:
    settings = settings or PlatformSettings()
    store = store or make_store(settings, NAME)
    bus = bus or make_bus(settings, NAME)
    keys = keys or make_keys(settings)
    relay = OutboxRelay(store, bus, COLLECTIONS, interval_s=settings.outbox_interval_s)
    service = ProjectsService(
        Aggregates(store, "enterprises", Enterprise, relay.notify),
        Aggregates(store, "projects", Project, relay.notify),
        ContractProjectEvents(settings.topic_projects),
        clock,
    )
    bus.subscribe(settings.topic_matches, settings.group(NAME), consumer.match_events(service))
    return ProjectsApp(
        settings,
        store,
        bus,
        keys,
        relay,
        service,
        routers=[api.router(service)],
        publishes=[settings.topic_projects],
    )
