"""Proposals → matches. After any change the stored matches of each affected project are brought
in line with the engine's current top k (create the missing, re-propose the retracted, retract
the ones no longer proposed that nobody accepted): reconciled, not replayed. Match ids derive
from the pair, so reconciling twice, or after a crash, creates nothing twice.

The event path never computes the allocation: the `allocated` flag of a match comes from the
latest allocation computed in the background (`allocator.py`), with the market version it holds
as of; when a newer allocation is ready, `flag` updates every match whose flag changed.
`allocated` is what the stored flags say (seeded from the store on start)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from functools import partial
from typing import TYPE_CHECKING

from g60_chassis.aggregates import Aggregates, retry_on_conflict
from g60_chassis.errors import Conflict
from g60_contracts.events import OfferSnapshot, ProjectSnapshot
from matching.domain.match import Match, match_id, propose
from matching.domain.results import Delta, Proposal
from matching.service.ports import Clock, Engine, MatchEvents
from matching.service.readmodel import ReadModel

if TYPE_CHECKING:
    from matching.service.audit import DecisionLog

BATCH = 256  # projects whose proposals are computed in one engine pass
YIELD_EVERY = 200  # writes between yields to the event loop (the memory store never yields)


class Proposals:
    def __init__(
        self,
        matches: Aggregates[Match],
        read: ReadModel,
        engine: Engine,
        events: MatchEvents,
        clock: Clock,
    ) -> None:
        self.matches, self.read, self.engine, self.events, self.clock = (
            matches,
            read,
            engine,
            events,
            clock,
        )
        self.allocated: dict[str, str] = {}  # project → offer, as the stored flags say
        self.as_of: int | None = None  # the market version of that allocation
        self.settled_as_of: int | None = None  # every flag holds as of this version
        self.audit: DecisionLog | None = None  # records each decision (set by bootstrap)

    def seed(self, allocated: dict[str, str]) -> None:
        self.allocated = dict(allocated)

    async def apply(self, delta: Delta) -> None:
        """Reconcile the projects an engine change touched; its removed pairs may be stale."""
        stale: dict[str, set[str]] = {}
        for project_id, offer_id in delta.removed:
            stale.setdefault(project_id, set()).add(offer_id)
        await self.reconcile(delta.projects, stale)

    async def reconcile(
        self, project_ids: Iterable[str], stale: dict[str, set[str]] | None = None
    ) -> None:
        ids = sorted(set(project_ids))
        for i in range(0, len(ids), BATCH):
            batch = ids[i : i + BATCH]
            wanted = self.engine.proposals_for_projects(batch, breakdowns=True, allocated=False)
            for project_id in batch:
                mine = wanted.get(project_id, [])
                held = self.allocated.get(project_id)
                if held is not None and all(p.offer_id != held for p in mine):
                    extra = self.engine.proposal(project_id, held, allocated=False)
                    mine = [*mine, extra] if extra is not None else mine
                await self._project(project_id, mine, (stale or {}).get(project_id, set()))
            await asyncio.sleep(0)

    async def _project(self, project_id: str, wanted: list[Proposal], stale: set[str]) -> None:
        """Matches are looked up by id (a hash of the pair), never by scanning; the lookups and
        the new proposals' inserts go out together (one round trip's wait, not one per pair:
        at top k = 10 that was ~40 sequential store calls per need)."""
        now, held, as_of = self.clock(), self.allocated.get(project_id), self.as_of
        found = await asyncio.gather(
            *(self.matches.get(match_id(project_id, p.offer_id)) for p in wanted)
        )
        new = [p for p, match in zip(wanted, found, strict=True) if match is None]
        if new:
            await self._propose_all(project_id, new, held, as_of)
        for p, match in zip(wanted, found, strict=True):
            if match is None:
                continue
            kinds = match.repropose(now)
            if kinds and self.audit is not None:
                await self.audit.decided("proposed", match, p)
            if match.refresh(p, held == p.offer_id, as_of) or kinds:
                await self._save(match, kinds)
        for offer_id in sorted(stale - {p.offer_id for p in wanted}):
            match = await self.matches.get(match_id(project_id, offer_id))
            if match is None:
                continue
            untouched = not (match.accepted_by_enterprise or match.accepted_by_funder)
            if match.status == "proposed" and untouched:
                await self._save(match, match.retract("no longer among the proposals", now))

    async def _propose_all(
        self, project_id: str, new: list[Proposal], held: str | None, as_of: int | None
    ) -> None:
        project = await self.read.project(project_id)
        if project is None:
            return
        offers = await asyncio.gather(*(self.read.offer(p.offer_id) for p in new))
        await asyncio.gather(
            *(
                self._propose(p, project, offer, held == p.offer_id, as_of)
                for p, offer in zip(new, offers, strict=True)
                if offer is not None
            )
        )

    async def _propose(
        self,
        p: Proposal,
        project: ProjectSnapshot,
        offer: OfferSnapshot,
        allocated: bool,
        as_of: int | None,
    ) -> None:
        match = propose(
            p,
            enterprise_id=project.enterprise_id,
            funder_id=offer.funder_id,
            instrument=str(offer.instrument),
            amount_cny=int(project.amount_cny),
            response_days=int(offer.response_deadline_days or 14),
            allocated=allocated,
            as_of=as_of,
            now=self.clock(),
        )
        if self.audit is not None:
            await self.audit.keep_inputs(project, offer)
            match.record(self.audit.decision("proposed", match.id, p, project, offer))
            if allocated:
                match.record(self.audit.decision("allocated", match.id, p, project, offer))
        with contextlib.suppress(Conflict):  # proposed by an earlier delivery of this change
            await self.matches.add(match, partial(self.events.match, "proposed"))

    async def _save(self, match: Match, kinds: list[str]) -> None:
        events = (lambda m: [e for k in kinds for e in self.events.match(k, m)]) if kinds else None
        await self.matches.save(match, events)

    # the allocation's flags ----------------------------------------------------------------------
    async def flag(self, after: dict[str, str], as_of: int) -> int:
        """Set the `allocated` flag of every match whose pair entered or left the allocation
        since the one the stored flags say; a newly allocated pair without a match is proposed.
        The new map applies at once to the event path (which may reconcile a project while this
        runs); returns how many projects moved."""
        before = self.allocated
        self.allocated, self.as_of = after, as_of
        moved = sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))
        for i, project_id in enumerate(moved):
            if project_id in before:
                await self._flag(project_id, before[project_id], False, as_of)
            if project_id in after:
                await self._flag(project_id, after[project_id], True, as_of)
            if i % YIELD_EVERY == YIELD_EVERY - 1:
                await asyncio.sleep(0)
        self.settled_as_of = as_of
        return len(moved)

    async def _flag(self, project_id: str, offer_id: str, allocated: bool, as_of: int) -> None:
        async def attempt() -> None:
            match = await self.matches.get(match_id(project_id, offer_id))
            if match is None:
                if allocated and self.engine.has_project(project_id):
                    p = self.engine.proposal(project_id, offer_id, allocated=False)
                    if p is not None:
                        await self._propose_all(project_id, [p], offer_id, as_of)
                return
            if match.flag(allocated, as_of):
                if allocated and self.audit is not None:
                    p = self.engine.proposal(project_id, offer_id, allocated=False)
                    if p is not None:
                        await self.audit.decided("allocated", match, p)
                await self.matches.save(match)

        await retry_on_conflict(attempt)
