"""Composition root of the projects service: builds it from settings, with overrides for tests
and for the all-in-one process."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from g60_chassis.aggregates import Aggregates
from g60_chassis.auth import KeyStore
from g60_chassis.bus import EventBus
from g60_chassis.runtime import BuiltService, wire
from g60_chassis.settings import PlatformSettings
from g60_chassis.store import DocumentStore
from g60_contracts.enums import Role
from projects.adapters.events import ContractProjectEvents
from projects.domain.model import Enterprise, Project
from projects.entrypoints import api, consumer
from projects.service.handlers import ProjectsService

NAME = "projects"
COLLECTIONS = ["enterprises", "projects"]
INDEXES = [("projects", "enterprise_id"), ("projects", "status")]
UNIQUE = [("enterprises", "uscc")]  # one enterprise per unified social credit code (and lookups)
ProjectsApp = BuiltService[ProjectsService]


def bootstrap(
    settings: PlatformSettings | None = None,
    *,
    store: DocumentStore | None = None,
    bus: EventBus | None = None,
    keys: KeyStore | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> ProjectsApp:
    w = wire(NAME, COLLECTIONS, settings, store=store, bus=bus, keys=keys)
    service = ProjectsService(
        Aggregates(w.store, "enterprises", Enterprise, w.relay.notify),
        # a need's POST writes with the others in flight (its only unique key is `_id`)
        Aggregates(w.store, "projects", Project, w.relay.notify, group_adds=True),
        ContractProjectEvents(w.settings.topic_projects),
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
        [w.settings.topic_projects],
        list(INDEXES),
        list(UNIQUE),
        {Role.enterprise: service.enterprise_exists},
    )
