"""The restart: the engine loads from the read model in the background while the service already
serves and consumes.

The engine is memory only; after a restart it is rebuilt from the stored read model (reading,
validating, translating and scoring every project and offer: tens of seconds at 100,000 needs).
Meanwhile the API answers from the store (match lists, matches, the lifecycle; `explain` needs
the engine and answers 503), and the consumers go on: a market event's snapshot is kept in the
read model marked `pending` and its handler returns at once, so its offset is committed and the
consumer never waits inside a handler (waiting there made a restarted consumer miss its
group's rebalance and be fenced). Once loaded, the catch-up applies every pending view to the
engine and reconciles the proposals of the projects it touches, from the stored state, not from
the event: the store stays the source of truth, and applying a view twice changes nothing.

Nothing is lost: a mark is stored with the snapshot in one write, cleared only once applied, and
a crash in between leaves it for the next start's catch-up. Nothing is applied twice: match ids
derive from the pair, so reconciling again creates nothing. When the catch-up is almost done, new
events wait for it (one short last pass) so that no snapshot is kept pending after it looked."""

from __future__ import annotations

import asyncio
import logging

from pydantic import BaseModel

from g60_chassis.aggregates import Aggregates
from g60_contracts.events import EnterpriseRegistered, OfferSnapshot, ProjectSnapshot
from matching.domain.match import Match
from matching.service.allocator import AllocationRefresher
from matching.service.lifecycle import Lifecycle
from matching.service.ports import Engine, Translator, View
from matching.service.proposals import Proposals
from matching.service.readmodel import LOAD_PAGE, LOAD_PAUSE, ReadModel, snapshots

log = logging.getLogger(__name__)
ROUNDS = 3  # catch-up passes while events keep arriving, before they wait for the last one
FEW = 20  # a pass that found no more pending views than this is followed by the last one


class EngineLoad:
    def __init__(
        self,
        read: ReadModel,
        matches: Aggregates[Match],
        engine: Engine,
        translate: Translator,
        proposals: Proposals,
        lifecycle: Lifecycle,
        allocation: AllocationRefresher,
    ) -> None:
        self.read, self.matches, self.engine, self.translate = read, matches, engine, translate
        self.proposals, self.lifecycle, self.allocation = proposals, lifecycle, allocation
        self.loaded = asyncio.Event()  # cleared while the engine loads and catches up
        self.loaded.set()
        self.caught_up = 0  # pending views the last load applied
        self._closing: asyncio.Event | None = None  # the last catch-up pass: set when it ends
        self._writing = 0  # deferred snapshots being stored
        self._written = asyncio.Event()  # set when none is
        self._written.set()

    async def deferred(self, views: Aggregates[View], snapshot: BaseModel, removed: bool) -> bool:
        """While the engine loads, keep the snapshot marked pending and say so (True): the
        handler returns; the catch-up applies it. False once loaded: handle it now."""
        while self._closing is not None:  # events wait for the last pass (loaded, or it failed)
            await self._closing.wait()
        if self.loaded.is_set():
            return False
        self._writing += 1
        self._written.clear()
        try:
            await self.read.keep(views, snapshot, removed, pending=True)
        finally:
            self._writing -= 1
            if not self._writing:
                self._written.set()
        return True

    async def run(self) -> int:
        """Load the read model into the engine in one batch, in a worker thread (the event loop
        stays free), then catch up with the views kept meanwhile (or left pending by a crash).
        Returns how many projects were loaded."""
        self.loaded.clear()
        views = await self.read.live()
        allocated = await self.matches.every({"allocated": True}, LOAD_PAGE, LOAD_PAUSE)
        flags = {m.project_id: m.offer_id for m in allocated}
        self.proposals.seed(flags)
        count = await asyncio.to_thread(self._load, *views)  # validation and scoring: seconds
        self.caught_up = await self._catch_up()
        self.allocation.changed()
        return count

    def _load(self, enterprises: list[View], projects: list[View], offers: list[View]) -> int:
        ents, snaps, offs = snapshots(enterprises, projects, offers)
        by_id = {e.id: e for e in ents}
        models = [
            self.translate.project(p, by_id[p.enterprise_id])
            for p in snaps
            if p.enterprise_id in by_id
        ]
        self.engine.load(models, [self.translate.offer(o) for o in offs], delta=False)
        return len(models)

    async def _catch_up(self) -> int:
        """Apply the pending views in passes while events keep arriving; then new events wait,
        the last pass applies what is left and clears every mark (only then: FerretDB's
        compare-and-set is not atomic, so no mark is cleared while a handler may write the same
        view), and the engine is declared loaded."""
        applied: dict[tuple[str, str], int] = {}  # (collection, id) → source version applied
        try:
            for _ in range(ROUNDS):
                if await self._apply_pending(applied) <= FEW:
                    break
            self._closing = asyncio.Event()
            # snapshots being stored as pending: the last pass must find them
            await self._written.wait()
            await self._apply_pending(applied, clear=True)
            self.loaded.set()
        finally:
            if self._closing is not None:
                self._closing.set()
                self._closing = None
        return len(applied)

    async def _apply_pending(self, applied: dict[tuple[str, str], int], clear: bool = False) -> int:
        """Apply the pending views not applied yet at their version; returns how many."""
        enterprises, projects, offers = await self.read.pending()
        found = 0
        for views, pending, apply in (
            (self.read.offers, offers, self._offer),
            (self.read.enterprises, enterprises, self._enterprise),
            (self.read.projects, projects, self._project),
        ):
            for view in pending:
                key = (views.collection, view.id)
                if applied.get(key) != view.source_version:
                    await apply(view)
                    applied[key] = view.source_version
                    found += 1
                if clear:
                    await self.read.applied(views, view.id, view.source_version)
        return found

    async def _enterprise(self, view: View) -> None:
        enterprise = EnterpriseRegistered.model_validate(view.data)
        for project in await self.read.waiting_for(enterprise.id):
            await self._open_project(project, enterprise)

    async def _offer(self, view: View) -> None:
        """Apply an offer's stored state and reconcile every project that holds it in the
        engine or in a stored match (the engine may have loaded this state already, so the
        upsert's delta alone may be empty), sweeping: a wide change leaves the pairs it pushed
        out of those top ks to the settling (`settling.py`), which a crash may have cut short."""
        offer = OfferSnapshot.model_validate(view.data)
        if view.removed:
            self.engine.remove_offer(offer.id)
            await self.lifecycle.retract_all(None, offer.id, "the offer was withdrawn")
        else:
            self.engine.upsert_offer(self.translate.offer(offer))
        held = self.engine.proposals_for_offer(offer.id, breakdowns=False, allocated=False)
        stored = {m.project_id for m in await self.matches.every({"offer_id": offer.id}, 500)}
        ids = stored | {p.project_id for p in held}
        await self.proposals.reconcile(ids, changed={offer.id}, sweep=True)

    async def _project(self, view: View) -> None:
        project = ProjectSnapshot.model_validate(view.data)
        if view.removed:
            self.engine.remove_project(project.id)
            reason = f"the project was {project.status}"
            await self.lifecycle.retract_all(project.id, None, reason)
            return
        enterprise = await self.read.enterprise(project.enterprise_id)
        if enterprise is not None:  # else matched when its enterprise arrives
            await self._open_project(project, enterprise)

    async def _open_project(
        self, project: ProjectSnapshot, enterprise: EnterpriseRegistered
    ) -> None:
        """Apply an open project's stored state; its stored matches the engine no longer
        proposes are retracted (unless someone accepted them)."""
        self.engine.upsert_project(self.translate.project(project, enterprise))
        stored = {m.offer_id for m in await self.matches.every({"project_id": project.id})}
        await self.proposals.reconcile([project.id], {project.id: stored}, changed={project.id})
