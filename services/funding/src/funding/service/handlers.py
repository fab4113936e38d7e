"""Use cases of the funding service.

Visibility (a decision): the catalogue — every offer, withdrawn ones included (filter
`status=active` for the live ones), and every funder's public profile — is readable by every
authenticated role: partners integrate from it, enterprises compare products, funders see the
market. Writes are narrower: funders are registered by operators; an offer is published and
changed by an operator or by its own funder's key, and another funder's offer is a 404 to
write, so ids cannot be probed for write access. Capacity changes only here, driven by match
events (see the ledger use cases at the end)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from funding.domain.model import Funder, Offer, RuleViolation
from funding.service.ports import Clock, FundingEvents, OfferEventKind
from g60_chassis.aggregates import Aggregates, Outgoing, retry_on_conflict
from g60_chassis.errors import Conflict, NotFound, PreconditionFailed, Unprocessable
from g60_chassis.idempotency import create_once, new_id, request_hash
from g60_chassis.principal import Principal
from g60_contracts.enums import Role

log = logging.getLogger(__name__)
T = TypeVar("T")
READERS = (Role.operator, Role.funder, Role.enterprise, Role.partner)


def _rule(exc: RuleViolation) -> Exception:
    return Conflict(str(exc)) if exc.field == "status" else Unprocessable(str(exc), exc.field)


class FundingService:
    def __init__(
        self,
        funders: Aggregates[Funder],
        offers: Aggregates[Offer],
        events: FundingEvents,
        clock: Clock,
        new_id: Callable[[str, Principal, str | None], str] = new_id,
    ) -> None:
        self.funders, self.offers, self.events = funders, offers, events
        self.clock, self.new_id = clock, new_id

    # funders ---------------------------------------------------------------------------------
    async def register_funder(
        self, principal: Principal, body: dict[str, Any], idempotency_key: str | None = None
    ) -> tuple[Funder, bool]:
        principal.require(Role.operator)
        id = self.new_id("fun", principal, idempotency_key)
        digest = request_hash(body)

        async def create() -> Funder:
            funder = Funder(**body, id=id, request_hash=digest, created_at=self.clock())
            return await self.funders.add(funder, self.events.funder_registered)

        return await create_once(self.funders, id, digest, bool(idempotency_key), create)

    async def funder_exists(self, id: str) -> bool:
        return await self.funders.get(id) is not None

    async def get_funder(self, principal: Principal, id: str) -> Funder:
        principal.require(*READERS)
        funder = await self.funders.get(id)
        if funder is None:
            raise NotFound.of("funder", id)
        return funder

    # offers ----------------------------------------------------------------------------------
    async def publish_offer(
        self, principal: Principal, body: dict[str, Any], idempotency_key: str | None = None
    ) -> tuple[Offer, bool]:
        principal.require(Role.operator, Role.funder)
        if principal.role == Role.funder:
            if body.get("funder_id") not in (None, principal.tenant_id):
                raise NotFound.of("funder", body["funder_id"])
            body = {**body, "funder_id": principal.tenant_id}
        if not body.get("funder_id"):
            raise Unprocessable("funder_id is required for an operator", "funder_id")
        funder = await self.funders.get(body["funder_id"])
        if funder is None:
            raise Unprocessable(f"no funder {body['funder_id']!r}", "funder_id")
        digest = request_hash(body)
        id = self.new_id("off", principal, idempotency_key)

        async def create() -> Offer:
            now = self.clock()
            offer = Offer(
                **body,
                id=id,
                funder_kind=funder.kind,
                request_hash=digest,
                created_at=now,
                updated_at=now,
            )
            try:
                offer.check()
            except RuleViolation as exc:
                raise _rule(exc) from exc
            return await self.offers.add(offer, partial(self.events.offer, "published"))

        return await create_once(self.offers, id, digest, bool(idempotency_key), create)

    async def get_offer(self, principal: Principal, id: str) -> Offer:
        principal.require(*READERS)
        offer = await self.offers.get(id)
        if offer is None:
            raise NotFound.of("offer", id)
        return offer

    async def list_offers(
        self, principal: Principal, filters: dict[str, Any], cursor: str | None, limit: int
    ) -> tuple[list[Offer], str | None]:
        principal.require(*READERS)
        where = {k: v for k, v in filters.items() if v is not None}
        return await self.offers.list(where, cursor, limit)

    async def _own_offer(self, principal: Principal, id: str) -> Offer:
        principal.require(Role.operator, Role.funder)
        offer = await self.offers.get(id)
        if offer is None or (
            principal.role == Role.funder and offer.funder_id != principal.tenant_id
        ):
            raise NotFound.of("offer", id)
        return offer

    async def update_offer(
        self, principal: Principal, id: str, changes: dict[str, Any], if_match: int | None
    ) -> Offer:
        """Reservations write the offer too, so a PATCH without If-Match that loses a race to
        one is applied again to the fresh state; with If-Match the moved version is a 412."""
        await self._own_offer(principal, id)
        kinds: list[OfferEventKind] = ["updated"]
        if "capacity_cny" in changes:
            kinds.append("capacity_changed")

        async def attempt() -> Offer:
            offer = await self.offers.get(id)
            assert offer is not None  # offers are never deleted
            if if_match is not None and if_match != offer.version:
                raise PreconditionFailed(
                    f"the offer is at version {offer.version}, not {if_match}",
                    current_version=offer.version,
                )
            try:
                offer.change(changes, self.clock())
            except RuleViolation as exc:
                raise _rule(exc) from exc
            return await self.offers.save(offer, lambda o: self._offer_events(kinds, o))

        result: Offer = await retry_on_conflict(attempt)
        return result

    def _offer_events(self, kinds: list[OfferEventKind], offer: Offer) -> Outgoing:
        return [e for kind in kinds for e in self.events.offer(kind, offer)]

    async def withdraw_offer(self, principal: Principal, id: str) -> Offer:
        await self._own_offer(principal, id)

        async def attempt() -> Offer:
            offer = await self.offers.get(id)
            assert offer is not None
            if not offer.withdraw(self.clock()):
                return offer
            return await self.offers.save(offer, partial(self.events.offer, "withdrawn"))

        result: Offer = await retry_on_conflict(attempt)
        return result

    # the capacity ledger (events from matching) ----------------------------------------------
    async def reserve(self, offer_id: str, match_id: str, project_id: str, amount_cny: int) -> None:
        """match.agreed: one compare-and-set of the offer document stores the reservation (or
        the refusal), the decision event and the capacity change together."""

        async def attempt() -> None:
            offer = await self.offers.get(offer_id)
            if offer is None:
                raise NotFound.of("offer", offer_id)
            decision = offer.reserve(match_id, amount_cny, self.clock())
            if not decision.changed:
                return  # answered before; the event went out with that write

            def events(o: Offer) -> Outgoing:
                out = self.events.decision(o, match_id, project_id, amount_cny, decision)
                return out + (self.events.offer("capacity_changed", o) if decision.reserved else [])

            await self.offers.save(offer, events)

        await retry_on_conflict(attempt)

    async def commit(self, offer_id: str, match_id: str, amount_cny: int) -> None:
        """deal.closed: the reservation becomes committed at the closed amount (see
        `Offer.commit` for a close above the reservation). Idempotent."""
        outcome = await self._ledger(
            offer_id,
            lambda o: o.commit(match_id, amount_cny, self.clock()),
            lambda outcome: outcome in ("committed", "capped"),
        )
        if outcome == "capped":
            log.warning(
                "deal %s closed at %d CNY on offer %s, above its reservation and beyond the "
                "remaining capacity: committed the reserved amount only",
                match_id,
                amount_cny,
                offer_id,
            )
        elif outcome in (None, "unreserved"):
            log.warning("deal %s closed on offer %s without a reservation here", match_id, offer_id)

    async def release(self, offer_id: str, match_id: str) -> None:
        """match.declined / expired / retracted: free a reservation still held. Idempotent."""
        await self._ledger(offer_id, lambda o: o.release(match_id, self.clock()), bool)

    async def _ledger(
        self, offer_id: str, step: Callable[[Offer], T], changed: Callable[[T], bool]
    ) -> T | None:
        """Read-modify-write of one offer's ledger; saved (with `capacity_changed`) only when
        `step` changed something. None: no such offer, so nothing to do."""

        async def attempt() -> T | None:
            offer = await self.offers.get(offer_id)
            if offer is None:
                return None
            result = step(offer)
            if changed(result):
                await self.offers.save(offer, partial(self.events.offer, "capacity_changed"))
            return result

        result: T | None = await retry_on_conflict(attempt)
        return result
