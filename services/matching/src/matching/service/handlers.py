"""Use cases of the matching service. The market's events (enterprises, projects, offers,
capacity) keep the read model and the engine up to date and reconcile the affected projects'
proposals at once; the allocation follows in the background (`allocator.py`). The lifecycle and
the queries live beside (`lifecycle.py`, `queries.py`); this class composes them for the
entrypoints."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from functools import partial

from g60_chassis.aggregates import Aggregates
from g60_contracts.events import EnterpriseRegistered, OfferSnapshot, ProjectSnapshot
from matching.domain.match import Match
from matching.domain.results import Delta
from matching.service.allocator import AllocationRefresher
from matching.service.audit import DecisionLog
from matching.service.lifecycle import Lifecycle
from matching.service.loading import EngineLoad
from matching.service.ports import Allocate, Clock, Engine, MatchEvents, Translator
from matching.service.proposals import Proposals
from matching.service.queries import Queries
from matching.service.readmodel import Kept, ReadModel


class MatchingService:
    def __init__(
        self,
        matches: Aggregates[Match],
        read: ReadModel,
        engine: Engine,
        translate: Translator,
        events: MatchEvents,
        clock: Clock,
        allocate: Allocate,
        audit: DecisionLog | None = None,
        debounce_s: float = 0.5,
    ) -> None:
        self.matches, self.engine, self.translate = matches, engine, translate
        self.read = read
        self.proposals = Proposals(matches, read, engine, events, clock, audit)
        self.allocation = AllocationRefresher(engine, allocate, self.proposals.flag, debounce_s)
        self.lifecycle = Lifecycle(matches, events, clock)
        self.loading = EngineLoad(
            self.read, matches, engine, translate, self.proposals, self.lifecycle, self.allocation
        )
        self.loaded = self.loading.loaded  # cleared while the engine loads after a restart
        self.queries = Queries(matches, self.read, engine, translate, self.proposals, self.loaded)
        self._unfinished: set[str] = set()  # offers the engine changed, not yet stored through

    async def rebuild(self) -> int:
        """Load the engine from the read model while events are kept pending (`loading.py`)."""
        return await self.loading.run()

    async def on_enterprise(self, enterprise: EnterpriseRegistered) -> None:
        if await self.loading.deferred(self.read.enterprises, enterprise, removed=False):
            return
        await self.read.keep(self.read.enterprises, enterprise, removed=False)
        # projects may arrive first: they are keyed by their own id, on other partitions
        waiting = await self.read.waiting_for(enterprise.id)
        for project in waiting:
            delta = self.engine.upsert_project(self.translate.project(project, enterprise))
            await self.proposals.apply(delta, {project.id})
        if waiting:
            self.allocation.changed()

    async def on_project(self, project: ProjectSnapshot) -> None:
        removed = project.status != "open"
        if await self.loading.deferred(self.read.projects, project, removed):
            return
        await self.read.keep(self.read.projects, project, removed)
        # applied even to a redelivery: the engine is in memory and upserts are idempotent
        if removed:
            self.engine.remove_project(project.id)  # its open matches are retracted below
            reason = f"the project was {project.status}"
            await self.lifecycle.retract_all(project.id, None, reason)
            self.allocation.changed()
            return
        enterprise = await self.read.enterprise(project.enterprise_id)
        if enterprise is None:
            return  # matched when its enterprise arrives (see on_enterprise)
        delta = self.engine.upsert_project(self.translate.project(project, enterprise))
        stale = {project.id: {o for _, o in delta.removed}}
        await self.proposals.reconcile([project.id], stale, changed={project.id})
        self.allocation.changed()

    async def on_project_events(
        self, events: Sequence[EnterpriseRegistered | ProjectSnapshot]
    ) -> None:
        """A consumed batch of the projects topic, with the effect of handling each in order:
        each run of open projects (submitted or changed) goes through together (their views
        stored at once, one engine pass, one reconciliation of all their proposals); anything
        else (an enterprise, a withdrawn or funded project) is handled alone, in its place.
        While the engine loads after a restart each goes alone (kept pending, `loading.py`)."""
        if not self.loaded.is_set():
            for event in events:
                if isinstance(event, ProjectSnapshot):
                    await self.on_project(event)
                else:
                    await self.on_enterprise(event)
            return
        run: list[ProjectSnapshot] = []
        for event in events:
            if isinstance(event, ProjectSnapshot) and event.status == "open":
                run.append(event)
                continue
            await self._open_projects(run)
            run = []
            if isinstance(event, ProjectSnapshot):
                await self.on_project(event)
            else:
                await self.on_enterprise(event)
        await self._open_projects(run)

    async def _open_projects(self, snapshots: list[ProjectSnapshot]) -> None:
        """`on_project` for many open projects at once (the newest snapshot of each)."""
        newest: dict[str, ProjectSnapshot] = {}
        for p in snapshots:
            if p.id not in newest or p.version >= newest[p.id].version:
                newest[p.id] = p
        projects = list(newest.values())
        if not projects:
            return
        # their views and their decisions' inputs (each project and enterprise at this
        # version: known before the engine runs) are stored together, one round trip where
        # they were two in a row; the decisions made below find the inputs stored
        (_, created), _ = await asyncio.gather(
            self.read.keep_new(self.read.projects, projects), self._keep_inputs(projects)
        )
        # their enterprises read only once their views are stored: an enterprise stored
        # meanwhile then finds them waiting (`on_enterprise` stores, then looks), or is found
        # here (read together with the views' insert, both could miss: a project never matched)
        ids = sorted({p.enterprise_id for p in projects})
        found = await asyncio.gather(*(self.read.enterprise(e) for e in ids))
        enterprises = dict(zip(ids, found, strict=True))
        stale: dict[str, set[str]] = {}
        for p in projects:
            enterprise = enterprises[p.enterprise_id]
            if enterprise is None:
                continue  # matched when its enterprise arrives (see on_enterprise)
            delta = self.engine.upsert_project(self.translate.project(p, enterprise))
            stale[p.id] = {o for _, o in delta.removed}
        if stale:
            await self.proposals.reconcile(stale, stale, newest, changed=stale, fresh=created)
            self.allocation.changed()

    async def _keep_inputs(self, projects: list[ProjectSnapshot]) -> None:
        audit = self.proposals.audit
        if audit is not None:
            await audit.keep_sides(projects)

    async def on_offer(self, offer: OfferSnapshot) -> None:
        removed = offer.status != "active"
        if await self.loading.deferred(self.read.offers, offer, removed):
            return
        if removed:
            again = not await self.read.keep(self.read.offers, offer, removed)
            delta = self.engine.remove_offer(offer.id)
            await self.lifecycle.retract_all(None, offer.id, "the offer was withdrawn")
            await self._offer_changed(
                offer, removed, lambda: delta, stored=True, retracted=True, redelivered=again
            )
        else:
            upsert = partial(self.engine.upsert_offer, self.translate.offer(offer))
            await self._offer_changed(offer, removed, upsert, stored=False)
        self.allocation.changed()

    async def on_capacity_changed(self, offer: OfferSnapshot) -> None:
        removed = offer.status != "active"
        if await self.loading.deferred(self.read.offers, offer, removed):
            return
        if removed:
            await self.read.keep(self.read.offers, offer, removed)
        change = partial(
            self.engine.set_capacity, offer.id, int(offer.remaining_cny), offer.deals_taken
        )
        await self._offer_changed(offer, removed, change, stored=removed)
        self.allocation.changed()

    async def _offer_changed(
        self,
        offer: OfferSnapshot,
        removed: bool,
        change: Callable[[], Delta],
        stored: bool,
        retracted: bool = False,
        redelivered: bool = False,
    ) -> None:
        """Change the engine, store the offer's view (unless the caller has: `stored`) and
        reconcile what the change moved (`retracted`: the caller retracted all the offer's
        matches, so none of them is read again). A wide change (more projects than
        `Proposals.inline`) leaves part of the work to the background settling: the view is
        then marked `pending` in its one write (it was written, then written again marked)
        and cleared once that is done, so a crash before leaves the mark for the next start's
        catch-up (`settling.py`). The view is stored after the engine's change, which says
        whether the change is wide.

        A redelivery (the view stored already) may follow a delivery that died between
        storing the view and storing the proposals, and a restart loads the offer from that
        view, so the engine's change moves nothing: the projects that hold the offer are
        reconciled. So are they after a delivery of this process that failed once the engine
        had changed (`_unfinished`): its redelivery finds the engine changed and the view
        perhaps not stored. A withdrawal's redelivery (`redelivered`: the caller found its
        view withdrawn already) finds the engine without the offer: the projects that held a
        match with it are reconciled (the pairs its withdrawal moved back up are proposed)."""
        settling = self.proposals.settling
        failed_before = offer.id in self._unfinished
        self._unfinished.add(offer.id)
        delta = change()
        wide = len(delta.projects) > self.proposals.inline or settling.marked(offer.id)
        kept = Kept.newer
        if not stored:
            kept = await self.read.keep(self.read.offers, offer, removed, wide)
        elif wide:
            await self.read.keep(self.read.offers, offer, removed, pending=True)
        redelivered = redelivered or not kept
        # its view just created: no match of the offer can be stored (none is made before
        # the views of its pair), so none is looked for (an offer entering 147 top ks read
        # 147 pairs that could not be there); a redelivery found the view, and reads them
        unseen = offer.id if kept is Kept.created or retracted else None
        await self.proposals.apply(delta, {offer.id}, unseen=unseen)
        if wide:
            settling.mark(
                offer.id, partial(self.read.applied, self.read.offers, offer.id, offer.version)
            )
        if redelivered or failed_before:
            await self.proposals.reconcile(
                await self._holding(offer.id, removed), changed={offer.id}, sweep=True
            )
        self._unfinished.discard(offer.id)

    async def _holding(self, offer_id: str, removed: bool) -> set[str]:
        """The projects whose matches a change of this offer may have left unreconciled: those
        the engine proposes it to, or, withdrawn, those with a stored match of it."""
        if removed:
            held = await self.proposals.retractions.every({"offer_id": offer_id})
            return {str(m.doc["project_id"]) for m in held}
        proposed = self.engine.proposals_for_offer(offer_id, breakdowns=False, allocated=False)
        return {p.project_id for p in proposed}
