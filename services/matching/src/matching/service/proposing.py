"""New proposals → new matches: the views each needs read once for a batch, the decision
that proposed it recorded with the inputs it cites (`audit.py`), and the batch inserted at
once with its `proposed` events (a match that exists already is left as it was)."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING

from g60_chassis.aggregates import Aggregates, FromDoc
from g60_contracts.events import OfferSnapshot, ProjectSnapshot
from matching.domain.match import Match, propose
from matching.domain.results import Proposal
from matching.service.ports import Clock, MatchEvents
from matching.service.readmodel import ReadModel

if TYPE_CHECKING:
    from matching.service.audit import DecisionLog


class NewMatches:
    def __init__(
        self,
        matches: Aggregates[Match],
        read: ReadModel,
        events: MatchEvents,
        clock: Clock,
        audit: DecisionLog | None,
    ) -> None:
        self.matches, self.read, self.events, self.clock = matches, read, events, clock
        self.audit = audit

    async def make(
        self, new: list[tuple[Proposal, bool]], as_of: int | None, known: dict[str, ProjectSnapshot]
    ) -> list[Match]:
        """The matches of these proposals (each with its `allocated` flag), from one read of
        each view they need; `known`: project snapshots the caller holds (not read again)."""
        views = await self.read.pair_views((p for p, _ in new), known)
        todo = [
            (p, *pair, allocated)
            for (p, allocated), pair in zip(new, views, strict=True)
            if pair is not None
        ]
        if self.audit is not None:  # the inputs are stored before the decisions that cite them
            await self.audit.keep_inputs_of([(project, offer) for _, project, offer, _ in todo])
        now = self.clock()
        return [self._match(*row, as_of, now) for row in todo]

    async def insert(self, matches: list[Match]) -> None:
        # a match that exists was proposed by an earlier delivery of this change: left alone
        proposed = FromDoc(partial(self.events.match, "proposed"))  # from the stored form
        await self.matches.add_many(matches, proposed)

    def _match(
        self,
        p: Proposal,
        project: ProjectSnapshot,
        offer: OfferSnapshot,
        allocated: bool,
        as_of: int | None,
        now: datetime,
    ) -> Match:
        match = propose(
            p,
            enterprise_id=project.enterprise_id,
            funder_id=offer.funder_id,
            instrument=str(offer.instrument),
            amount_cny=int(project.amount_cny),
            response_days=int(offer.response_deadline_days or 14),
            allocated=allocated,
            as_of=as_of,
            now=now,
        )
        if self.audit is not None:
            # made from `p` just now: the decisions share its breakdowns (no compare, no copy)
            match.record(self.audit.decision("proposed", match.id, p, project, offer, True))
            if allocated:
                match.record(self.audit.decision("allocated", match.id, p, project, offer, True))
        return match
