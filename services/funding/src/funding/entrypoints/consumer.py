"""Inbound events of the funding service: the match lifecycle drives the capacity ledger."""

from __future__ import annotations

from funding.service.handlers import FundingService
from g60_chassis.bus import Handler
from g60_chassis.envelope import Envelope
from g60_contracts.events import EventType, MatchSnapshot

RELEASING = {EventType.match_declined, EventType.match_expired, EventType.match_retracted}


def match_events(svc: FundingService) -> Handler:
    async def handle(event: Envelope) -> None:
        if event.type == EventType.match_agreed:
            m = MatchSnapshot.model_validate(event.data)
            await svc.reserve(m.offer_id, m.id, m.project_id, m.amount_cny)
        elif event.type == EventType.deal_closed:
            m = MatchSnapshot.model_validate(event.data)
            await svc.commit(m.offer_id, m.id, m.closed_amount_cny or m.amount_cny)
        elif event.type in RELEASING:
            m = MatchSnapshot.model_validate(event.data)
            await svc.release(m.offer_id, m.id)

    return handle
