"""The match lifecycle: both sides accept or decline, funding answers the agreement with a
capacity reservation, the funder closes, deadlines expire, withdrawals retract."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import date, datetime, timedelta

from g60_chassis.aggregates import Aggregates, retry_on_conflict
from g60_chassis.errors import Conflict, NotFound, Unprocessable
from g60_chassis.principal import Principal
from g60_chassis.store import VersionConflict
from g60_contracts.enums import Role
from matching.domain.match import OPEN, Match, Side, TransitionError, expiry_day
from matching.service.ports import Clock, MatchEvents
from matching.service.retraction import Retractions

Step = Callable[[Match], list[str]]
# the expiry pass reads every open match of a status in pages of this size. Large on purpose:
# FerretDB 1.24 pushes neither the `_id` cursor, the sort nor the limit of a page down to
# PostgreSQL, so each page fetched and converted every open match of the status (~2,300 open
# matches in pages of 200, after a burst of needs: FerretDB at 1.3 cores for 15-20 s of every
# 30 s, with no need coming in; measured). In pages of 5,000 a pass reads each open match
# about once (the same pass: ~4 CPU-seconds of FerretDB, then idle).
EXPIRY_PAGE = 5_000


def party(principal: Principal, match: Match) -> bool:
    if principal.role == Role.operator:
        return True
    if principal.role == Role.enterprise:
        return match.enterprise_id == principal.tenant_id
    if principal.role == Role.funder:
        return match.funder_id == principal.tenant_id
    return False


class Lifecycle:
    def __init__(self, matches: Aggregates[Match], events: MatchEvents, clock: Clock) -> None:
        self.matches, self.events, self.clock = matches, events, clock
        self.retractions = Retractions(matches, events)
        # every open match due before this UTC day has been expired: later passes read only
        # the days since (by the indexed `expiry_day`); None until the first, full, pass
        self._swept: date | None = None

    async def transition(self, id: str, step: Step) -> Match:
        async def attempt() -> Match:
            match = await self.matches.get(id)
            if match is None:
                raise NotFound.of("match", id)
            try:
                kinds = step(match)
            except TransitionError as exc:
                raise Conflict(str(exc), status=match.status) from exc
            if kinds:
                await self.matches.save(
                    match, lambda m: [e for k in kinds for e in self.events.match(k, m)]
                )
            return match

        result: Match = await retry_on_conflict(attempt)
        return result

    async def retract_all(self, project_id: str | None, offer_id: str | None, reason: str) -> None:
        """Every open match of a withdrawn project or offer retracted: read raw and written as
        field updates with their events, in one store call (`Retractions.withdraw`). It was
        one `transition` per match, in turn: a load and a whole save each, two round trips a
        match (an offer withdrawn from 147 top ks: 294 sequential store calls)."""
        if project_id:
            await self.retractions.withdraw({"project_id": project_id}, reason, self.clock())
        elif offer_id:
            await self.retractions.withdraw({"offer_id": offer_id}, reason, self.clock())

    async def get(self, principal: Principal, id: str) -> Match:
        match = await self.matches.get(id)
        if match is None or not party(principal, match):
            raise NotFound.of("match", id)
        return match

    @staticmethod
    def side(principal: Principal, side: Side | None) -> Side:
        if principal.role == Role.enterprise:
            return "enterprise"
        if principal.role == Role.funder:
            return "funder"
        principal.require(Role.operator, Role.enterprise, Role.funder)
        if side is None:
            raise Unprocessable(
                "an operator acts for a side: pass side=enterprise|funder", "side", "query"
            )
        return side

    async def accept(self, principal: Principal, id: str, side: Side | None) -> Match:
        await self.get(principal, id)
        acting, now = self.side(principal, side), self.clock()
        return await self.transition(id, lambda m: m.accept(acting, now))

    async def decline(self, principal: Principal, id: str, side: Side | None, reason: str) -> Match:
        await self.get(principal, id)
        acting, now = self.side(principal, side), self.clock()
        return await self.transition(id, lambda m: m.decline(acting, reason, now))

    async def close(self, principal: Principal, id: str, amount_cny: int) -> Match:
        principal.require(Role.operator, Role.funder)
        await self.get(principal, id)
        now = self.clock()
        return await self.transition(id, lambda m: m.close(amount_cny, now))

    async def on_capacity(self, match_id: str, reserved: bool, reason: str | None) -> None:
        """Funding's answer to an agreement."""
        now = self.clock()
        step: Step = (
            (lambda m: m.reserved(now))
            if reserved
            else (lambda m: m.rejected(reason or "capacity", now))
        )
        try:
            await self.transition(match_id, step)
        except NotFound:
            return  # not ours

    async def expire_due(self) -> int:
        """Expire the open matches whose deadline passed. The first pass reads every open
        match (documents of an older release have no `expiry_day`); later ones read only the
        matches of each UTC day since the last pass up to today, by equality on the indexed
        `expiry_day` (FerretDB 1.24 pushes an equality filter down to PostgreSQL, not a range:
        the full pass fetched every open match, ~4 CPU-seconds of FerretDB per pass after a
        burst of needs). Today's day is read again by the next pass (its later deadlines)."""
        now = self.clock()
        today = date.fromisoformat(expiry_day(now))
        if self._swept is None:
            due = [
                m
                for status in sorted(OPEN)
                for m in await self.matches.every({"status": status}, EXPIRY_PAGE)
            ]
            await self._backfill(now)
        else:
            days = [self._swept + timedelta(days=i) for i in range((today - self._swept).days + 1)]
            due = [
                m
                for day in days
                for m in await self.matches.every({"expiry_day": day.isoformat()}, EXPIRY_PAGE)
                if m.status in OPEN
            ]
        expired = 0
        for match in due:
            if match.expires_at is not None and match.expires_at <= now:
                await self.transition(match.id, lambda m: m.expire(now))
                expired += 1
        self._swept = today
        return expired

    async def _backfill(self, now: datetime) -> None:
        """Store `expiry_day` on the open matches an older release wrote without it (not yet
        due: the pass expires the others), so that the passes by day find them."""
        for status in sorted(OPEN):
            for match in await self.matches.every(
                {"status": status, "expiry_day": None}, EXPIRY_PAGE
            ):
                if match.expires_at is not None and match.expires_at > now:
                    with contextlib.suppress(VersionConflict):  # a write stored it meanwhile
                        await self.matches.save(match)
