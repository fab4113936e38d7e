"""The subscriptions service as an ASGI app."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from g60_chassis.asyncapi import asyncapi_document
from g60_chassis.service_app import build_asgi
from g60_chassis.settings import PlatformSettings
from g60_contracts.events import EventType as E
from subscriptions.bootstrap import SubscriptionsApp, bootstrap

DESCRIPTION = """Partner event subscriptions: register a webhook endpoint with event-type
filters and receive the platform's events as signed HTTP POSTs (Standard Webhooks headers
`webhook-id`, `webhook-timestamp`, `webhook-signature`; the body is the CloudEvent 1.0 in
structured mode), retried for days, replayable on request. An endpoint receives only what its
key may read over HTTP.

Authenticate with `Authorization: Bearer <api key>`. Errors are `application/problem+json`
(RFC 9457). Lists are cursor-paginated. Creates honour `Idempotency-Key`."""


def topics(settings: PlatformSettings) -> tuple[dict[str, list[E]], dict[str, list[E]]]:
    """(published, consumed) event types by topic, for the AsyncAPI document."""
    every = list(E)
    consumed = {
        settings.topic_projects: [
            t for t in every if t.value.split(".")[1] in ("enterprise", "project")
        ],
        settings.topic_funding: [
            t for t in every if t.value.split(".")[1] in ("funder", "offer", "capacity")
        ],
        settings.topic_matches: [t for t in every if t.value.split(".")[1] in ("match", "deal")],
    }
    return {}, consumed


def asyncapi(settings: PlatformSettings) -> dict[str, Any]:
    pub, con = topics(settings)
    return asyncapi_document(
        "G60 subscriptions events", pub, con, bootstrap=settings.kafka_bootstrap
    )


def create(
    settings: PlatformSettings | None = None, built: SubscriptionsApp | None = None
) -> FastAPI:
    built = built or bootstrap(settings)
    return build_asgi(
        [built],
        title="G60 subscriptions service",
        description=DESCRIPTION,
        asyncapi=lambda: asyncapi(built.settings),
    )
