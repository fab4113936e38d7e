"""Inbound events of the projects service: validate the contract payload, pick the use case by
event type, call it. Types it does not handle are skipped (and committed)."""

from __future__ import annotations

from g60_chassis.envelope import Envelope
from g60_contracts.events import EventType, MatchSnapshot
from projects.service.handlers import ProjectsService

TYPES = frozenset({EventType.deal_closed.value})  # the bus skips the others unread


def match_events(svc: ProjectsService):  # type: ignore[no-untyped-def]
    async def handle(event: Envelope) -> None:
        if event.type == EventType.deal_closed:
            match = MatchSnapshot.model_validate(event.data)
            amount = match.closed_amount_cny or match.amount_cny
            await svc.on_deal_closed(match.project_id, match.id, amount)

    return handle
