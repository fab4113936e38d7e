"""The projects service as an ASGI app."""

from __future__ import annotations

from typing import Any

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


def topics(
    settings: PlatformSettings,
) -> tuple[dict[str, list[E]], dict[str, list[E]]]:
    """(published, consumed) event types by topic, for the AsyncAPI document."""
    return {settings.topic_projects: PUBLISHES}, {settings.topic_matches: CONSUMES}


def asyncapi(settings: PlatformSettings) -> dict[str, Any]:
    pub, con = topics(settings)
    return asyncapi_document("G60 projects events", pub, con, bootstrap=settings.kafka_bootstrap)


def create(settings: PlatformSettings | None = None, built: ProjectsApp | None = None) -> FastAPI:
    built = built or bootstrap(settings)
    return build_asgi(
        [built],
        title="G60 projects service",
        description=DESCRIPTION,
        asyncapi=lambda: asyncapi(built.settings),
    )
