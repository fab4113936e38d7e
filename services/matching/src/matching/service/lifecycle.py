"""The match lifecycle: both sides accept or decline, funding answers the agreement with a
capacity reservation, the funder closes, deadlines expire, withdrawals retract."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date

from g60_chassis.aggregates import Aggregates, retry_on_conflict
from g60_chassis.errors import Conflict, NotFound, Unprocessable
from g60_chassis.principal import Principal
from g60_contracts.enums import Role
from matching.domain.match import OPEN, Match, Side, TransitionError
from matching.service.ports import Clock, MatchEvents

Step = Callable[[Match], list[str]]
# The expiry pass. The first pass of each UTC day (and the first after a start) reads every
# open match; the others read only the matches whose deadline falls on the day, by equality on
# their `expires_on` (an index FerretDB uses). A match due on an earlier day was due when the
# day's full pass ran, so the day's bucket is all a later pass can find due; the full pass also
# catches what a stopped service missed and documents written before `expires_on` existed.
# Pages are large on purpose: FerretDB 1.24 pushes neither the `_id` cursor, the sort nor the
# limit of a page down to PostgreSQL, so each page fetched and converted every open match of
# the status (~2,300 open matches in pages of 200 after a burst of needs: FerretDB at 1.3
# cores for 15-20 s of every 30 s, measured). The full pass of a day costs that once (~4
# CPU-seconds of FerretDB at 2,300 open matches); the other passes read one day's bucket.
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
        self._full_pass_on: date | None = None  # the UTC day of the last full expiry pass

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
        now = self.clock()
        where = {"project_id": project_id} if project_id else {"offer_id": offer_id}
        for match in await self.matches.every(where, 200):
            if match.status in OPEN:
                await self.transition(match.id, lambda m: m.retract(reason, now))

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
        """Expire the open matches whose deadline passed; returns how many."""
        now = self.clock()
        today = now.astimezone(UTC).date()
        if self._full_pass_on == today:
            due = await self.matches.every({"expires_on": today.isoformat()}, EXPIRY_PAGE)
        else:
            due = [
                m
                for s in sorted(OPEN)
                for m in await self.matches.every({"status": s}, EXPIRY_PAGE)
            ]
        expired = 0
        for match in due:
            if match.status in OPEN and match.expires_at is not None and match.expires_at <= now:
                await self.transition(match.id, lambda m: m.expire(now))
                expired += 1
        self._full_pass_on = today  # only once every due match of the pass expired
        return expired
