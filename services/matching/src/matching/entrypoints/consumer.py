"""Inbound events of the matching service: projects and funding topics → use cases. Each
payload is validated into its contract model once, here."""

from __future__ import annotations

from collections.abc import Sequence

from g60_chassis.bus import BatchHandler, Handler
from g60_chassis.envelope import Envelope
from g60_contracts.events import (
    CapacityDecision,
    EnterpriseRegistered,
    EventType,
    OfferSnapshot,
    ProjectSnapshot,
)
from matching.service.handlers import MatchingService

PROJECT_TYPES = {
    EventType.project_submitted,
    EventType.project_updated,
    EventType.project_withdrawn,
    EventType.project_funded,
}
OFFER_TYPES = {EventType.offer_published, EventType.offer_updated, EventType.offer_withdrawn}


def project_events(svc: MatchingService) -> Handler:
    async def handle(event: Envelope) -> None:
        if event.type == EventType.enterprise_registered:
            await svc.on_enterprise(EnterpriseRegistered.model_validate(event.data))
        elif event.type in PROJECT_TYPES:
            await svc.on_project(ProjectSnapshot.model_validate(event.data))

    return handle


def project_batches(svc: MatchingService) -> BatchHandler:
    """A consumed batch of the projects topic at once (see `on_project_events`); a record that
    does not validate fails the batch, and the bus then delivers its records one by one."""

    async def handle(events: Sequence[Envelope]) -> None:
        typed: list[EnterpriseRegistered | ProjectSnapshot] = []
        for event in events:
            if event.type == EventType.enterprise_registered:
                typed.append(EnterpriseRegistered.model_validate(event.data))
            elif event.type in PROJECT_TYPES:
                typed.append(ProjectSnapshot.model_validate(event.data))
        await svc.on_project_events(typed)

    return handle


def funding_events(svc: MatchingService) -> Handler:
    async def handle(event: Envelope) -> None:
        if event.type in OFFER_TYPES:
            await svc.on_offer(OfferSnapshot.model_validate(event.data))
        elif event.type == EventType.offer_capacity_changed:
            await svc.on_capacity_changed(OfferSnapshot.model_validate(event.data))
        elif event.type in (EventType.capacity_reserved, EventType.capacity_rejected):
            decision = CapacityDecision.model_validate(event.data)
            await svc.lifecycle.on_capacity(
                decision.match_id, event.type == EventType.capacity_reserved, decision.reason
            )

    return handle
