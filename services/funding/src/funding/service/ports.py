"""Ports of the funding service."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Protocol

from funding.domain.model import Decision, Funder, Offer
from g60_chassis.aggregates import Outgoing

OfferEventKind = Literal["published", "updated", "withdrawn", "capacity_changed"]


class FundingEvents(Protocol):
    def funder_registered(self, funder: Funder) -> Outgoing: ...
    def offer(self, kind: OfferEventKind, offer: Offer) -> Outgoing: ...
    def decision(
        self, offer: Offer, match_id: str, project_id: str, amount_cny: int, decision: Decision
    ) -> Outgoing: ...


class Clock(Protocol):
    def __call__(self) -> datetime: ...
