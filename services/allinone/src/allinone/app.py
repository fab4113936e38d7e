"""The whole platform in one process: the four services, each with its own store, talking only
through one bus — in-process by default (SQLite files under the data folder), or Kafka and
MongoDB when G60_BUS=kafka and G60_STORE=mongo. Same use cases, contracts and outbox as when
they run apart; every path is served on one port (8000)."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from fastapi import FastAPI

import funding.bootstrap
import funding.entrypoints.app
import matching.bootstrap
import matching.entrypoints.app
import projects.bootstrap
import projects.entrypoints.app
import subscriptions.bootstrap
import subscriptions.entrypoints.app
from g60_chassis.asyncapi import asyncapi_document
from g60_chassis.runtime import make_bus, make_keys, make_store
from g60_chassis.service_app import Part, build_asgi
from g60_chassis.settings import PlatformSettings
from g60_contracts.events import EventType

SERVICES: dict[str, tuple[Callable[..., Part], ModuleType]] = {
    "projects": (projects.bootstrap.bootstrap, projects.entrypoints.app),
    "funding": (funding.bootstrap.bootstrap, funding.entrypoints.app),
    "matching": (matching.bootstrap.bootstrap, matching.entrypoints.app),
    "subscriptions": (subscriptions.bootstrap.bootstrap, subscriptions.entrypoints.app),
}

DESCRIPTION = """The G60 Science and Technology Innovation Corridor financing matchmaking
platform: enterprises post financing needs, funders publish offers, the platform proposes and
explains matches, reserves the funder's capacity and tracks each deal to its close.

Authenticate with `Authorization: Bearer <api key>` (roles: operator, enterprise, funder,
partner). Errors are `application/problem+json` (RFC 9457; 422 lists each bad field). Lists are
cursor-paginated (`limit`, `cursor` → `next_cursor`). Updates return an `ETag`; send it back as
`If-Match`. Creates honour `Idempotency-Key`. Money is integer CNY; times are RFC 3339 UTC.
Events (CloudEvents 1.0 on Kafka): see `/asyncapi`."""


def build_parts(settings: PlatformSettings) -> list[Part]:
    bus = make_bus(settings, "allinone")
    keys = make_keys(settings)
    return [
        boot(settings, store=make_store(settings, name), bus=bus, keys=keys)
        for name, (boot, _) in SERVICES.items()
    ]


def platform_asyncapi(settings: PlatformSettings) -> dict[str, Any]:
    publishes: dict[str, list[EventType]] = {}
    consumes: dict[str, list[EventType]] = {}
    for _, module in SERVICES.values():
        pub, con = module.topics(settings)
        for topic, types in pub.items():
            publishes.setdefault(topic, []).extend(types)
        for topic, types in con.items():
            consumes.setdefault(topic, []).extend(
                t for t in types if t not in consumes.get(topic, [])
            )
    return asyncapi_document(
        "G60 platform events", publishes, consumes, bootstrap=settings.kafka_bootstrap
    )


def create(
    settings: PlatformSettings | None = None,
    parts: list[Part] | None = None,
    on_started: Callable[[], Any] | None = None,
) -> FastAPI:
    settings = settings or PlatformSettings()
    parts = parts or build_parts(settings)
    return build_asgi(
        parts,
        title="G60 financing matchmaking platform",
        description=DESCRIPTION,
        asyncapi=lambda: platform_asyncapi(settings),
        on_started=on_started,
    )
