"""The funding service as an ASGI app."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from funding.bootstrap import FundingApp, bootstrap
from funding.entrypoints.consumer import RELEASING
from g60_chassis.asyncapi import asyncapi_document
from g60_chassis.service_app import build_asgi
from g60_chassis.settings import PlatformSettings
from g60_contracts.events import EventType as E

DESCRIPTION = """Funders of the G60 corridor (the G60 fund, alliance banks, VCs, leasing) and
their offers, with each offer's capacity ledger: funding is the only writer of capacity.

Authenticate with `Authorization: Bearer <api key>`. Errors are `application/problem+json`
(RFC 9457). Lists are cursor-paginated (`limit`, `cursor` → `next_cursor`). Updates return an
`ETag`; send it back as `If-Match`. Creates honour `Idempotency-Key`. Money is integer CNY.
Events: see `/asyncapi`."""

PUBLISHES = [
    E.funder_registered,
    E.offer_published,
    E.offer_updated,
    E.offer_withdrawn,
    E.offer_capacity_changed,
    E.capacity_reserved,
    E.capacity_rejected,
]


def topics(settings: PlatformSettings) -> tuple[dict[str, list[E]], dict[str, list[E]]]:
    """(published, consumed) event types by topic, for the AsyncAPI document."""
    consumed = [E.match_agreed, E.deal_closed, *sorted(RELEASING)]
    return {settings.topic_funding: PUBLISHES}, {settings.topic_matches: consumed}


def asyncapi(settings: PlatformSettings) -> dict[str, Any]:
    pub, con = topics(settings)
    return asyncapi_document("G60 funding events", pub, con, bootstrap=settings.kafka_bootstrap)


def create(settings: PlatformSettings | None = None, built: FundingApp | None = None) -> FastAPI:
    built = built or bootstrap(settings)
    return build_asgi(
        [built],
        title="G60 funding service",
        description=DESCRIPTION,
        asyncapi=lambda: asyncapi(built.settings),
    )
