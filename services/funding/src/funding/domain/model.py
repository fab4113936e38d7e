"""Funders, their offers, and the capacity ledger of each offer.

Capacity has one writer, this aggregate: `remaining = capacity - reserved - committed` never
goes below zero. A reservation is recorded under the match id that asked for it, which makes
every ledger operation idempotent: the same match reserving, committing or releasing again
changes nothing. A refusal is recorded too (state `rejected`, with its reason), so a redelivered
agreement never gets a second, different answer."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, computed_field

OfferStatus = Literal["active", "withdrawn"]
ReservationState = Literal["reserved", "committed", "released", "rejected"]
CommitOutcome = Literal["committed", "capped", "repeat", "unreserved"]

# what a PATCH may touch, and which of those may be cleared with null
CHANGEABLE = frozenset(
    {
        "name",
        "ticket_min_cny",
        "ticket_max_cny",
        "capacity_cny",
        "max_deals",
        "cities",
        "sectors",
        "stages",
        "requirements",
        "pricing",
        "decision_days",
        "response_deadline_days",
        "valid_from",
        "valid_until",
        "preferences",
    }
)
NULLABLE = frozenset({"max_deals", "decision_days", "valid_from", "valid_until"})
_PARTNER = {"ticket_min_cny": "ticket_max_cny", "valid_from": "valid_until"}


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
    request_hash: str | None = None  # the create request, for Idempotency-Key
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
        if self.max_deals is not None and self.max_deals < self.deals_taken:
            raise RuleViolation(
                f"max_deals cannot go below the deals already taken ({self.deals_taken})",
                "max_deals",
            )

    def change(self, changes: dict[str, Any], now: datetime) -> None:
        if self.status != "active":
            raise RuleViolation(f"a {self.status} offer cannot change", "status")
        for key, value in changes.items():
            if key not in CHANGEABLE:
                raise RuleViolation(f"{key} cannot be changed", key)
            if value is None and key not in NULLABLE:
                raise RuleViolation(f"{key} cannot be null", key)
            setattr(self, key, value)
        try:
            self.check()
        except RuleViolation as exc:
            # name the field the caller sent: lowering ticket_max_cny is what broke the range
            partner = _PARTNER.get(exc.field or "")
            if exc.field not in changes and partner in changes:
                raise RuleViolation(str(exc), partner) from None
            raise
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

    def commit(self, match_id: str, amount_cny: int, now: datetime) -> CommitOutcome:
        """The deal closed for `amount_cny`. Less than reserved: the difference is released.
        More: the whole amount is committed if the excess fits in the remaining capacity;
        otherwise only the reserved amount is ("capped" — the caller logs it, and the funder's
        own books settle the excess), so a late, larger close can never overbook the offer."""
        held = self.reservations.get(match_id)
        if held is None or held.state != "reserved":
            return "repeat" if held is not None and held.state == "committed" else "unreserved"
        excess = amount_cny - held.amount_cny
        capped = excess > self.remaining_cny  # remaining still counts the held amount as taken
        committed = held.amount_cny if capped else amount_cny
        self.reserved_cny -= held.amount_cny
        self.committed_cny += committed
        held.state, held.amount_cny = "committed", committed
        self.updated_at = now
        return "capped" if capped else "committed"

    def release(self, match_id: str, now: datetime) -> bool:
        held = self.reservations.get(match_id)
        if held is None or held.state != "reserved":
            return False
        self.reserved_cny -= held.amount_cny
        self.deals_taken -= 1
        held.state = "released"
        self.updated_at = now
        return True
