"""Funders, their offers, and the capacity ledger of each offer.

Capacity has one writer, this aggregate: `remaining = capacity - reserved - committed` never
goes below zero. A reservation is recorded under the match id that asked for it, which makes
every ledger operation idempotent: the same match reserving, committing or releasing again
changes nothing."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, computed_field

OfferStatus = Literal["active", "withdrawn"]
ReservationState = Literal["reserved", "committed", "released", "rejected"]


class RuleViolation(Exception):
    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class Funder(BaseModel):
    id: str
    name: str
    kind: str
    city: str | None = None
    description: str = ""
    created_at: datetime
    version: int = 0


class Reservation(BaseModel):
    amount_cny: int
    state: ReservationState
    reason: str | None = None


class Decision(BaseModel):
    """The answer to a reservation request."""

    reserved: bool
    reason: str | None = None
    changed: bool = True  # False: this match was answered before (a redelivery)


class Offer(BaseModel):
    id: str
    funder_id: str
    funder_kind: str
    name: str
    instrument: str
    ticket_min_cny: int
    ticket_max_cny: int
    capacity_cny: int
    max_deals: int | None = None
    cities: list[str] = []
    sectors: list[str] = []
    stages: list[str] = []
    requirements: dict[str, Any] = {}
    pricing: dict[str, Any] = {}
    decision_days: int | None = None
    response_deadline_days: int = 14
    valid_from: date | None = None
    valid_until: date | None = None
    preferences: dict[str, Any] = {}
    status: OfferStatus = "active"
    reserved_cny: int = 0
    committed_cny: int = 0
    deals_taken: int = 0
    reservations: dict[str, Reservation] = {}
    request_hash: str | None = None
    created_at: datetime
    updated_at: datetime
    version: int = 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def remaining_cny(self) -> int:
        return max(self.capacity_cny - self.reserved_cny - self.committed_cny, 0)

    def check(self) -> None:
        if self.ticket_min_cny > self.ticket_max_cny:
            raise RuleViolation("ticket_min_cny exceeds ticket_max_cny", "ticket_min_cny")
        if self.valid_from and self.valid_until and self.valid_from > self.valid_until:
            raise RuleViolation("valid_from is after valid_until", "valid_from")
        if self.capacity_cny < self.reserved_cny + self.committed_cny:
            raise RuleViolation(
                f"capacity_cny cannot go below what is reserved and committed "
                f"({self.reserved_cny + self.committed_cny})",
                "capacity_cny",
            )

    def change(self, changes: dict[str, Any], now: datetime) -> None:
        if self.status != "active":
            raise RuleViolation(f"a {self.status} offer cannot change", "status")
        for key, value in changes.items():
            setattr(self, key, value)
        self.check()
        self.updated_at = now

    def withdraw(self, now: datetime) -> bool:
        if self.status == "withdrawn":
            return False
        self.status, self.updated_at = "withdrawn", now
        return True

    def reserve(self, match_id: str, amount_cny: int, now: datetime) -> Decision:
        known = self.reservations.get(match_id)
        if known is not None:
            return Decision(reserved=known.state != "rejected", reason=known.reason, changed=False)
        reason = None
        if self.status != "active":
            reason = "withdrawn"
        elif self.max_deals is not None and self.deals_taken >= self.max_deals:
            reason = "max_deals"
        elif amount_cny > self.remaining_cny:
            reason = "capacity"
        if reason is not None:
            self.reservations[match_id] = Reservation(
                amount_cny=amount_cny, state="rejected", reason=reason
            )
            return Decision(reserved=False, reason=reason)
        self.reservations[match_id] = Reservation(amount_cny=amount_cny, state="reserved")
        self.reserved_cny += amount_cny
        self.deals_taken += 1
        self.updated_at = now
        return Decision(reserved=True)

    def commit(self, match_id: str, amount_cny: int, now: datetime) -> bool:
        """The deal closed for `amount_cny`. Less than reserved: the rest is released. More:
        committed as far as the remaining capacity allows (the funder's own books rule)."""
        held = self.reservations.get(match_id)
        if held is None or held.state != "reserved":
            return False
        self.reserved_cny -= held.amount_cny
        extra = max(amount_cny - held.amount_cny, 0)
        committed = min(amount_cny, held.amount_cny + min(extra, self.remaining_cny))
        self.committed_cny += committed
        held.state, held.amount_cny = "committed", committed
        self.updated_at = now
        return True

    def release(self, match_id: str, now: datetime) -> bool:
        held = self.reservations.get(match_id)
        if held is None or held.state != "reserved":
            return False
        self.reserved_cny -= held.amount_cny
        self.deals_taken -= 1
        held.state = "released"
        self.updated_at = now
        return True
