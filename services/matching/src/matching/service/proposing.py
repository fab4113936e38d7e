"""New proposals → new matches: the views each needs read once for a batch, the decision
that proposed it recorded with the inputs it cites (`audit.py`), and the batch inserted at
once with its `proposed` events (a match that exists already is left as it was)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING

from g60_chassis.aggregates import Aggregates
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
        project_ids = sorted({p.project_id for p, _ in new})
        offer_ids = sorted({p.offer_id for p, _ in new})
        read_projects = asyncio.gather(
            *(self._project_view(pid, known.get(pid)) for pid in project_ids)
        )
        read_offers = asyncio.gather(*(self.read.offer(oid) for oid in offer_ids))
        found_projects, found_offers = await asyncio.gather(read_projects, read_offers)
        projects = dict(zip(project_ids, found_projects, strict=True))
        offers = dict(zip(offer_ids, found_offers, strict=True))
        todo = [
            (p, project, offer, allocated)
            for p, allocated in new
            if (project := projects[p.project_id]) is not None
            and (offer := offers[p.offer_id]) is not None
        ]
        if self.audit is not None:  # the inputs are stored before the decisions that cite them
            await self.audit.keep_inputs_of([(project, offer) for _, project, offer, _ in todo])
        now = self.clock()
        return [self._match(*row, as_of, now) for row in todo]

    async def _project_view(
        self, project_id: str, known: ProjectSnapshot | None
    ) -> ProjectSnapshot | None:
        return known if known is not None else await self.read.project(project_id)

    async def insert(self, matches: list[Match]) -> None:
        # a match that exists was proposed by an earlier delivery of this change: left alone
        await self.matches.add_many(matches, partial(self.events.match, "proposed"))

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
