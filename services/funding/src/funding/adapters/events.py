"""Outbound translation: funders, offers and capacity decisions → contract payloads in
CloudEvents envelopes on the funding topic, keyed by the aggregate (funder or offer) id."""

from __future__ import annotations

from pydantic import BaseModel

from funding.domain.model import Decision, Funder, Offer
from funding.service.ports import OfferEventKind
from g60_chassis.aggregates import Outgoing
from g60_chassis.envelope import Envelope
from g60_contracts.events import CapacityDecision, EventType, FunderRegistered, OfferSnapshot

SOURCE = "/g60/funding"
_OFFER_TYPES = {
    "published": EventType.offer_published,
    "updated": EventType.offer_updated,
    "withdrawn": EventType.offer_withdrawn,
    "capacity_changed": EventType.offer_capacity_changed,
}


class ContractFundingEvents:
    def __init__(self, topic: str) -> None:
        self.topic = topic

    def _one(self, type: EventType, subject: str, payload: BaseModel) -> Outgoing:
        data = payload.model_dump(mode="json")
        return [(self.topic, Envelope(type=type.value, source=SOURCE, subject=subject, data=data))]

    def funder_registered(self, funder: Funder) -> Outgoing:
        payload = FunderRegistered.model_validate(funder.model_dump())
        return self._one(EventType.funder_registered, funder.id, payload)

    def offer(self, kind: OfferEventKind, offer: Offer) -> Outgoing:
        payload = OfferSnapshot.model_validate(offer.model_dump(exclude={"reservations"}))
        return self._one(_OFFER_TYPES[kind], offer.id, payload)

    def decision(
        self, offer: Offer, match_id: str, project_id: str, amount_cny: int, decision: Decision
    ) -> Outgoing:
        payload = CapacityDecision(
            match_id=match_id,
            offer_id=offer.id,
            project_id=project_id,
            amount_cny=amount_cny,
            remaining_cny=offer.remaining_cny,
            reason=decision.reason,
        )
        kind = EventType.capacity_reserved if decision.reserved else EventType.capacity_rejected
        return self._one(kind, offer.id, payload)
