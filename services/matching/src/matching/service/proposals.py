"""Proposals → matches. After any change the stored matches of each affected project are brought
in line with the engine's current top k (create the missing, re-propose the retracted, retract
the ones no longer proposed that nobody accepted): reconciled, not replayed. Match ids derive
from the pair, so reconciling twice, or after a crash, creates nothing twice.

The event path never computes the allocation: the `allocated` flag of a match comes from the
latest allocation computed in the background (`allocator.py`), with the market version it holds
as of; when a newer allocation is ready, `flag` (`flags.py`) updates every match whose flag
changed. `allocated` is what the stored flags say (seeded from the store on start)."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING

from g60_chassis.aggregates import Aggregates, FromDoc
from g60_chassis.store import VersionConflict
from g60_contracts.events import ProjectSnapshot
from matching.domain.match import Match
from matching.domain.results import Delta, Proposal
from matching.service.flags import AllocationFlags
from matching.service.held import Reads
from matching.service.ports import Clock, Engine, MatchEvents
from matching.service.proposing import NewMatches
from matching.service.readmodel import ReadModel
from matching.service.refreshes import Refreshes
from matching.service.retraction import FieldWrite, Retractions, Rewrite, StoredMatch
from matching.service.settling import Settling

if TYPE_CHECKING:
    from matching.service.audit import DecisionLog

INLINE = 1  # a change touching more projects stores what moved now, the rest in `Settling`
# (the full reconciliation reads every match of each project and ranks its allocated pair
# beyond the top k, ~2 ms each at 100,000 x 10,000: at 8, a change of 6 to 8 projects cost as
# much as one of 147 on the wide path)
BATCH = 64  # projects reconciled in one engine pass and one round of store calls; the event
# loop is free between batches (an offer entering hundreds of top ks is written in several)
WIDE = 256  # projects of a wide change stored in one pass (one engine pass for the proposals,
# one for the breakdowns, one insert): each pass takes every column of its pairs (~1 ms at
# 100,000 x 10,000); an offer there enters 166 top ks at p90, 1,170 at p99


class Proposals(AllocationFlags):
    def __init__(
        self,
        matches: Aggregates[Match],
        read: ReadModel,
        engine: Engine,
        events: MatchEvents,
        clock: Clock,
        audit: DecisionLog | None = None,
        inline: int = INLINE,
    ) -> None:
        self.matches, self.read, self.engine, self.events, self.clock = (
            matches,
            read,
            engine,
            events,
            clock,
        )
        self.audit = audit  # records each decision (none in tests that do not look at it)
        self.new = NewMatches(matches, read, events, clock, audit)
        self.retractions = Retractions(matches, events)
        self.refreshes = Refreshes(events, audit)
        self.reads = Reads(matches, self.retractions, engine)
        self.allocated: dict[str, str] = {}  # project → offer, as the stored flags say
        self.as_of: int | None = None  # the market version of that allocation
        self.settled_as_of: int | None = None  # every flag holds as of this version
        # projects whose matches are being reconciled now: the allocation's flags wait for
        # them (a flag that proposed a missing allocated pair meanwhile made the batch's
        # `insert_many` clash, and FerretDB then inserts the whole batch again one by one)
        self._busy: dict[str, asyncio.Event] = {}
        self.inline = inline
        self.settling = Settling(self.reconcile)

    def seed(self, allocated: dict[str, str]) -> None:
        self.allocated = dict(allocated)

    async def apply(
        self, delta: Delta, changed: Collection[str] | None = None, unseen: str | None = None
    ) -> bool:
        """Reconcile the projects an engine change touched; its removed pairs may be stale.
        Past `inline` projects, only the pairs that entered their top k or whose score moved,
        and those of the changed offer that left it, are stored now, their matches read by id
        (an offer entering 147 top ks read and rewrote ~1,700 matches for ~300 that moved); the
        rest is left to `settling`: ranks shifted, and the pairs the change pushed out of a top
        k (they still fit; a wide publication's retractions were ~14 % of its event).
        `unseen`: an offer none of whose matches can be stored yet (its view was just
        created): its pairs are not read. Returns whether it left work to `settling`."""
        stale: dict[str, set[str]] = {}
        for project_id, offer_id in delta.removed:
            stale.setdefault(project_id, set()).add(offer_id)
        if len(delta.projects) <= self.inline:
            await self.reconcile(delta.projects, stale, changed=changed)
            return False
        moved: dict[str, set[str]] = {}
        for project_id, offer_id in (*delta.added, *delta.changed):
            moved.setdefault(project_id, set()).add(offer_id)
        left = {pid: own for pid, offers in stale.items() if (own := _own(offers, changed))}
        ids = sorted(delta.projects)
        for i in range(0, len(ids), WIDE):
            batch = ids[i : i + WIDE]
            await self._free(batch)
            asked = {pid: moved.get(pid, set()) | left.get(pid, set()) for pid in batch}
            wanted = self.engine.proposals_for_projects(
                batch, breakdowns=False, allocated=False, only=asked
            )
            plan = {
                pid: [p for p in wanted.get(pid, []) if p.offer_id in moved.get(pid, ())]
                for pid in batch
            }
            gone = {  # the allocated pair stays, beyond the top k too (as in `reconcile`)
                pid: left[pid]
                - {p.offer_id for p in wanted.get(pid, [])}
                - {self.allocated.get(pid)}
                for pid in batch
                if pid in left
            }
            await self._projects(plan, gone, {}, changed, by_pair=True, unseen=unseen)
            await asyncio.sleep(0)
        self.settling.later(ids, changed)
        return True

    async def reconcile(
        self,
        project_ids: Iterable[str],
        stale: dict[str, set[str]] | None = None,
        known: dict[str, ProjectSnapshot] | None = None,
        changed: Collection[str] | None = None,
        fresh: Collection[str] = (),
        sweep: bool = False,
    ) -> None:
        """`sweep`: every stored proposed match the engine no longer proposes is stale (a
        redelivery whose engine change moved nothing cannot say which pairs left).
        `known`: snapshots of these projects the caller just stored (not read again).
        `changed`: the ids of the projects and offers whose data the change moved (None: any
        may have). `fresh`: projects whose view the caller just created: no match of theirs
        can be stored (none is made before its project's view), so none is read. The engine
        is asked without breakdowns; they are computed, for the batch in one pass, only for
        the pairs whose stored match cannot keep its own (`_with_views`): an offer entering a
        hundred top ks used to compute a thousand, for one new pair each."""
        ids = sorted(set(project_ids))
        for i in range(0, len(ids), BATCH):
            batch = ids[i : i + BATCH]
            await self._free(batch)
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
            await self._projects(plan, stale or {}, known or {}, changed, fresh=fresh, sweep=sweep)
            await asyncio.sleep(0)

    async def _projects(
        self,
        plan: dict[str, list[Proposal]],
        stale: dict[str, set[str]],
        known: dict[str, ProjectSnapshot],
        changed: Collection[str] | None,
        by_pair: bool = False,
        fresh: Collection[str] = (),
        sweep: bool = False,
        unseen: str | None = None,
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
            await self._reconcile(plan, stale, known, changed, by_pair, fresh, sweep, unseen)
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
        by_pair: bool,
        fresh: Collection[str],
        sweep: bool = False,
        unseen: str | None = None,
    ) -> None:
        now, as_of = self.clock(), self.as_of
        held, shown = await self.reads.held(plan, stale, by_pair, fresh, unseen)
        plan = self.reads.with_views(plan, held, changed)
        new: list[tuple[Proposal, bool]] = []
        saves: list[tuple[Match, list[str]]] = []
        updates: list[FieldWrite] = []  # retractions, re-proposals (field updates, one write)
        reproposed: list[tuple[Match, Proposal]] = []
        raw: list[tuple[StoredMatch, Proposal]] = []  # refreshed by field updates
        for pid, mine in plan.items():
            for p in mine:
                match = held[pid].get(p.offer_id)
                if match is None:
                    new.append((p, self.allocated.get(pid) == p.offer_id))
                    continue
                if isinstance(match, StoredMatch):
                    raw.append((match, p))
                    continue
                kinds = match.repropose(now)
                if kinds:
                    reproposed.append((match, p))
                if match.refresh(p, self.allocated.get(pid) == p.offer_id, as_of) or kinds:
                    saves.append((match, kinds))
            gone = set(held[pid]) if sweep else stale.get(pid, set())
            for offer_id in sorted(gone - {p.offer_id for p in mine}):
                out = held[pid].get(offer_id) or shown.get((pid, offer_id))
                if out is not None and (retraction := self.retractions.retract(out, now)):
                    updates.append(retraction)
        again: dict[str, Rewrite] = {}  # how to write a raw one again if written meanwhile
        if reproposed or raw:
            args = (reproposed, raw, self.allocated, as_of, now)
            fields, again = await self.refreshes.decide(*args)
            updates += fields
        writes = [self._save_all(saves), self.retractions.write(updates, again)]
        if new:
            writes.append(self.new.insert(await self.new.make(new, as_of, known)))
        await asyncio.gather(*writes)

    async def _free(self, project_ids: list[str]) -> None:
        """Wait until no reconciliation holds these projects (the caller's plan, computed
        right after, would be overtaken by its writes, or race them)."""
        while busy := [self._busy[p] for p in project_ids if p in self._busy]:
            await busy[0].wait()

    async def _save_all(self, saves: list[tuple[Match, list[str]]]) -> None:
        """The changed matches of a batch (refreshed, re-proposed) in one write, each with its
        events (they were one `save` each: one round trip and one task apiece; the
        retractions are field updates of their own, `retraction.py`). A lost compare-and-set
        fails the batch as a lost `save` did (its delivery is retried, reconciled again)."""
        if not saves:
            return
        lost = await self.matches.save_many([(m, self._events(kinds)) for m, kinds in saves])
        if lost:
            raise VersionConflict(", ".join(m.id for m in lost))

    def _events(self, kinds: list[str]) -> FromDoc[Match] | None:
        if not kinds:
            return None
        return FromDoc(lambda m, doc: [e for k in kinds for e in self.events.match(k, m, doc)])


def _own(stale: set[str], changed: Collection[str] | None) -> set[str]:
    """The pairs among `stale` (offer ids of one project) that left its top k because their
    own offer changed (it may no longer fit: retracted on the event path); a pair another
    offer pushed out still fits, and is retracted with the settling, which sweeps (the ranks
    of the pairs that stay shift there too). `changed` None: any may have changed."""
    return set(stale) if changed is None else {o for o in stale if o in changed}
