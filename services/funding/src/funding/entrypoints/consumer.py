"""Inbound events of the funding service: the match lifecycle drives the capacity ledger.
The payload is validated against the contract first, so a malformed event raises pydantic's
ValidationError and the bus dead-letters it at once. Types it does not handle are skipped."""

from __future__ import annotations

from funding.service.handlers import FundingService
from g60_chassis.bus import Handler, PermanentError
from g60_chassis.envelope import Envelope
from g60_chassis.errors import NotFound
from g60_contracts.events import EventType, MatchSnapshot

RELEASING = {EventType.match_declined, EventType.match_expired, EventType.match_retracted}
# the types acted on: the bus skips the others unread (most of the topic: proposals)
TYPES = frozenset(t.value for t in (EventType.match_agreed, EventType.deal_closed, *RELEASING))


def match_events(svc: FundingService) -> Handler:
    async def handle(event: Envelope) -> None:
        if event.type == EventType.match_agreed:
            m = MatchSnapshot.model_validate(event.data)
            try:
                await svc.reserve(m.offer_id, m.id, m.project_id, m.amount_cny)
            except NotFound as exc:
                # offers are never deleted: an agreement on an unknown one will not heal
                raise PermanentError(str(exc)) from exc
        elif event.type == EventType.deal_closed:
            m = MatchSnapshot.model_validate(event.data)
            closed = m.amount_cny if m.closed_amount_cny is None else m.closed_amount_cny
            await svc.commit(m.offer_id, m.id, closed)
        elif event.type in RELEASING:
            m = MatchSnapshot.model_validate(event.data)
            await svc.release(m.offer_id, m.id)

    return handle
