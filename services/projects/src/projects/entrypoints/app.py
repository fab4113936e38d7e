"""The projects service as an ASGI app."""

from __future__ import annotations

from fastapi import FastAPI

from g60_chassis.asyncapi import asyncapi_document
from g60_chassis.service_app import build_asgi
from g60_chassis.settings import PlatformSettings
from g60_contracts.events import EventType as E
from projects.bootstrap import ProjectsApp, bootstrap

DESCRIPTION = """Enterprises of the nine G60 cities and their financing needs (projects).

Authenticate with `Authorization: Bearer <api key>`. Errors are `application/problem+json`
(RFC 9457). Lists are cursor-paginated (`limit`, `cursor` → `next_cursor`). Updates return an
`ETag`; send it back as `If-Match`. Creates honour `Idempotency-Key`. Money is integer CNY.
Events: see `/asyncapi`."""

PUBLISHES = [
    E.enterprise_registered,
    E.project_submitted,
    E.project_updated,
    E.project_withdrawn,
    E.project_funded,
]
CONSUMES = [E.deal_closed]


def asyncapi(settings: PlatformSettings) -> dict[str, object]:
    return asyncapi_document(
        "G60 projects events",
        {settings.topic_projects: PUBLISHES},
        {settings.topic_matches: CONSUMES},
        bootstrap=settings.kafka_bootstrap,
    )


def create(settings: PlatformSettings | None = None, built: ProjectsApp | None = None) -> FastAPI:
    built = built or bootstrap(settings)
    return build_asgi(
        [built],
        title="G60 projects service",
        description=DESCRIPTION,
        asyncapi=lambda: asyncapi(built.settings),
    )
