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
from collections.abc import Awaitable, Collection, Iterable
from functools import partial
from typing import TYPE_CHECKING

from g60_chassis.aggregates import Aggregates, retry_on_conflict
from g60_contracts.events import OfferSnapshot, ProjectSnapshot
from matching.domain.match import Match, match_id, propose
from matching.domain.results import Allocation, Delta, Proposal
from matching.service.ports import Clock, Engine, MatchEvents
from matching.service.readmodel import ReadModel

if TYPE_CHECKING:
    from matching.service.audit import DecisionLog

BATCH = 64  # projects reconciled in one engine pass and one round of store calls; the event
# loop is free between batches (an offer entering hundreds of top ks is written in several)
FLAG_BATCH = 32  # projects whose allocation flags are written at once


class Proposals:
    def __init__(
        self,
        matches: Aggregates[Match],
        read: ReadModel,
        engine: Engine,
        events: MatchEvents,
        clock: Clock,
        audit: DecisionLog | None = None,
    ) -> None:
        self.matches, self.read, self.engine, self.events, self.clock = (
            matches,
            read,
            engine,
            events,
            clock,
        )
        self.audit = audit  # records each decision (none in tests that do not look at it)
        self.allocated: dict[str, str] = {}  # project → offer, as the stored flags say
        self.as_of: int | None = None  # the market version of that allocation
        self.settled_as_of: int | None = None  # every flag holds as of this version
        # projects whose matches are being reconciled now: the allocation's flags wait for
        # them (a flag that proposed a missing allocated pair meanwhile made the batch's
        # `insert_many` clash, and FerretDB then inserts the whole batch again one by one)
        self._busy: dict[str, asyncio.Event] = {}

    def seed(self, allocated: dict[str, str]) -> None:
        self.allocated = dict(allocated)

    async def apply(self, delta: Delta, changed: Collection[str] | None = None) -> None:
        """Reconcile the projects an engine change touched; its removed pairs may be stale."""
        stale: dict[str, set[str]] = {}
        for project_id, offer_id in delta.removed:
            stale.setdefault(project_id, set()).add(offer_id)
        await self.reconcile(delta.projects, stale, changed=changed)

    async def reconcile(
        self,
        project_ids: Iterable[str],
        stale: dict[str, set[str]] | None = None,
        known: dict[str, ProjectSnapshot] | None = None,
        changed: Collection[str] | None = None,
    ) -> None:
        """`known`: snapshots of these projects the caller just stored (not read again).
        `changed`: the ids of the projects and offers whose data the change moved (None: any
        may have). The engine is asked without breakdowns; they are computed, for the batch in
        one pass, only for the pairs whose stored match cannot keep its own (`_with_views`):
        an offer entering a hundred top ks used to compute a thousand, for one new pair each."""
        ids = sorted(set(project_ids))
        for i in range(0, len(ids), BATCH):
            batch = ids[i : i + BATCH]
            wanted = self.engine.proposals_for_projects(batch, breakdowns=False, allocated=False)
            plan: dict[str, list[Proposal]] = {}
            for project_id in batch:
                mine = wanted.get(project_id, [])
                held = self.allocated.get(project_id)
                if held is not None and all(p.offer_id != held for p in mine):
                    extra = self.engine.proposal(
                        project_id, held, breakdowns=False, allocated=False
                    )
                    mine = [*mine, extra] if extra is not None else mine
                plan[project_id] = mine
            await self._projects(plan, stale or {}, known or {}, changed)
            await asyncio.sleep(0)

    async def _projects(
        self,
        plan: dict[str, list[Proposal]],
        stale: dict[str, set[str]],
        known: dict[str, ProjectSnapshot],
        changed: Collection[str] | None,
    ) -> None:
        """Bring the stored matches of these projects in line with `plan`, the batch's store
        calls together: each project's matches in one read (by the indexed `project_id`),
        then the views the new proposals need (each project and offer read once for the
        batch), then the new proposals in one insert and the changed matches at once. At top
        k = 10 one need alone used to be ~40 sequential calls; a batch of needs now waits for
        about four round trips in all."""
        done = asyncio.Event()
        mine = [pid for pid in plan if pid not in self._busy]
        self._busy.update(dict.fromkeys(mine, done))
        try:
            await self._reconcile(plan, stale, known, changed)
        finally:
            for pid in mine:
                del self._busy[pid]
            done.set()

    async def _reconcile(
        self,
        plan: dict[str, list[Proposal]],
        stale: dict[str, set[str]],
        known: dict[str, ProjectSnapshot],
        changed: Collection[str] | None,
    ) -> None:
        now, as_of = self.clock(), self.as_of
        found = await asyncio.gather(*(self.matches.every({"project_id": pid}) for pid in plan))
        held = {pid: {m.offer_id: m for m in ms} for pid, ms in zip(plan, found, strict=True)}
        plan = self._with_views(plan, held, changed)
        new: list[tuple[str, Proposal]] = []
        writes: list[Awaitable[None]] = []
        for pid, mine in plan.items():
            for p in mine:
                match = held[pid].get(p.offer_id)
                if match is None:
                    new.append((pid, p))
                    continue
                kinds = match.repropose(now)
                if kinds and self.audit is not None:
                    await self.audit.decided("proposed", match, p)
                if match.refresh(p, self.allocated.get(pid) == p.offer_id, as_of) or kinds:
                    writes.append(self._save(match, kinds))
            for offer_id in sorted(stale.get(pid, set()) - {p.offer_id for p in mine}):
                match = held[pid].get(offer_id)
                untouched = match is not None and not (
                    match.accepted_by_enterprise or match.accepted_by_funder
                )
                if match is not None and match.status == "proposed" and untouched:
                    writes.append(
                        self._save(match, match.retract("no longer among the proposals", now))
                    )
        if new:
            writes.append(self._insert(await self._proposing(new, as_of, known)))
        await asyncio.gather(*writes)

    def _with_views(
        self,
        plan: dict[str, list[Proposal]],
        held: dict[str, dict[str, Match]],
        changed: Collection[str] | None,
    ) -> dict[str, list[Proposal]]:
        """`plan` with breakdowns on the proposals that need them: a new or re-proposed pair
        (its decision cites them), a moved score, a pair of a changed project or offer. A pair
        whose only move is its rank keeps the stored breakdowns (they depend on the pair's data
        alone, and `Match.refresh` leaves them when the proposal has none)."""

        def needs(p: Proposal) -> bool:
            match = held[p.project_id].get(p.offer_id)
            return (
                changed is None
                or match is None
                or match.status == "retracted"
                or match.score != round(p.score, 4)
                or p.project_id in changed
                or p.offer_id in changed
            )

        todo = [p for mine in plan.values() for p in mine if needs(p)]
        viewed = {(p.project_id, p.offer_id): p for p in self.engine.with_breakdowns(todo)}
        return {
            pid: [viewed.get((p.project_id, p.offer_id), p) for p in mine]
            for pid, mine in plan.items()
        }

    async def _proposing(
        self, new: list[tuple[str, Proposal]], as_of: int | None, known: dict[str, ProjectSnapshot]
    ) -> list[Match]:
        """The matches of new proposals, from one read of each view they need."""
        project_ids = sorted({pid for pid, _ in new})
        offer_ids = sorted({p.offer_id for _, p in new})
        read_projects = asyncio.gather(
            *(self._project_view(pid, known.get(pid)) for pid in project_ids)
        )
        read_offers = asyncio.gather(*(self.read.offer(oid) for oid in offer_ids))
        found_projects, found_offers = await asyncio.gather(read_projects, read_offers)
        projects = dict(zip(project_ids, found_projects, strict=True))
        offers = dict(zip(offer_ids, found_offers, strict=True))
        made = await asyncio.gather(  # each may store its inputs (audit): together, not in turn
            *(
                self._match(p, project, offer, self.allocated.get(pid) == p.offer_id, as_of)
                for pid, p in new
                if (project := projects[pid]) is not None
                and (offer := offers[p.offer_id]) is not None
            )
        )
        return list(made)

    async def _project_view(
        self, project_id: str, known: ProjectSnapshot | None
    ) -> ProjectSnapshot | None:
        return known if known is not None else await self.read.project(project_id)

    async def _insert(self, matches: list[Match]) -> None:
        # a match that exists was proposed by an earlier delivery of this change: left alone
        await self.matches.add_many(matches, partial(self.events.match, "proposed"))

    async def _match(
        self,
        p: Proposal,
        project: ProjectSnapshot,
        offer: OfferSnapshot,
        allocated: bool,
        as_of: int | None,
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
            now=self.clock(),
        )
        if self.audit is not None:  # the inputs are stored before the decision that cites them
            await self.audit.keep_inputs(project, offer)
            match.record(self.audit.decision("proposed", match.id, p, project, offer))
            if allocated:
                match.record(self.audit.decision("allocated", match.id, p, project, offer))
        return match

    async def _save(self, match: Match, kinds: list[str]) -> None:
        events = (lambda m: [e for k in kinds for e in self.events.match(k, m)]) if kinds else None
        await self.matches.save(match, events)

    # the allocation's flags ----------------------------------------------------------------------
    async def flag(self, allocation: Allocation) -> int:
        """Set the `allocated` flag of every match whose pair entered or left the allocation
        since the one the stored flags say; a newly allocated pair without a match is proposed.
        The new map applies at once to the event path (which may reconcile a project while this
        runs); returns how many projects moved. The writes go in batches, the event loop free
        between them (HTTP and the consumers are served while a large move is written)."""
        before, after, as_of = self.allocated, allocation.as_map(), allocation.market_version
        self.allocated, self.as_of = after, as_of
        moved = sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))
        for i in range(0, len(moved), FLAG_BATCH):  # distinct matches: their writes overlap
            flags = [
                self._flag(pid, offers[pid], pair_in, as_of)
                for pid in moved[i : i + FLAG_BATCH]
                for offers, pair_in in ((before, False), (after, True))
                if pid in offers
            ]
            await asyncio.gather(*flags)
            await asyncio.sleep(0)
        self.settled_as_of = as_of
        return len(moved)

    async def _flag(self, project_id: str, offer_id: str, allocated: bool, as_of: int) -> None:
        while (busy := self._busy.get(project_id)) is not None:
            await busy.wait()

        async def attempt() -> None:
            match = await self.matches.get(match_id(project_id, offer_id))
            if match is None:
                if allocated and self.engine.has_project(project_id):
                    p = self.engine.proposal(project_id, offer_id, allocated=False)
                    if p is not None:  # `allocated` says this pair now: proposed allocated
                        await self._insert(await self._proposing([(project_id, p)], as_of, {}))
                return
            if match.flag(allocated, as_of):
                if allocated and self.audit is not None:
                    p = self.engine.proposal(project_id, offer_id, allocated=False)
                    if p is not None:
                        await self.audit.decided("allocated", match, p)
                await self.matches.save(match)

        await retry_on_conflict(attempt)
