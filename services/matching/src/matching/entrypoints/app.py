"""The matching service as an ASGI app."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from g60_chassis.asyncapi import asyncapi_document
from g60_chassis.service_app import build_asgi
from g60_chassis.settings import PlatformSettings
from g60_contracts.events import EventType as E
from matching.bootstrap import MatchingApp, bootstrap
from matching.entrypoints.consumer import OFFER_TYPES, PROJECT_TYPES

DESCRIPTION = """Proposals, explanations and the match lifecycle of the G60 platform.

A match is proposed by the engine (eligible pairs only, ranked by both sides' scores), accepted
by the enterprise and the funder in either order (→ agreed), reserved by funding (→ reserved or
rejected for capacity) and closed by the funder with the amount (→ closed). Either side may
decline; a match expires after the offer's response deadline. Events: see `/asyncapi`."""

PUBLISHES = [
    E.match_proposed,
    E.match_retracted,
    E.match_accepted,
    E.match_agreed,
    E.match_reserved,
    E.match_rejected,
    E.match_declined,
    E.match_expired,
    E.deal_closed,
]


def topics(settings: PlatformSettings) -> tuple[dict[str, list[E]], dict[str, list[E]]]:
    """(published, consumed) event types by topic, for the AsyncAPI document."""
    consumed_funding = [
        *sorted(OFFER_TYPES),
        E.offer_capacity_changed,
        E.capacity_reserved,
        E.capacity_rejected,
    ]
    return (
        {settings.topic_matches: PUBLISHES},
        {
            settings.topic_projects: [E.enterprise_registered, *sorted(PROJECT_TYPES)],
            settings.topic_funding: consumed_funding,
        },
    )


def asyncapi(settings: PlatformSettings) -> dict[str, Any]:
    pub, con = topics(settings)
    return asyncapi_document("G60 matching events", pub, con, bootstrap=settings.kafka_bootstrap)


def create(settings: PlatformSettings | None = None, built: MatchingApp | None = None) -> FastAPI:
    built = built or bootstrap(settings)
    return build_asgi(
        [built],
        title="G60 matching service",
        description=DESCRIPTION,
        asyncapi=lambda: asyncapi(built.settings),
    )
