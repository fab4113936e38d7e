"""The allocation's flags on the stored matches (a part of `Proposals`): when a newer
allocation is ready, `flag` sets the flag of every match whose pair entered or left it (a
field update, `Aggregates.set_fields`), proposing an allocated pair that has no match yet,
and logs the decision of each newly allocated pair beside its match (`DecisionLog.log_many`)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from g60_chassis.aggregates import Aggregates
from g60_chassis.foreground import Foreground
from matching.domain.match import Match, match_id
from matching.domain.results import Allocation, Proposal
from matching.service.ports import Engine
from matching.service.proposing import NewMatches

if TYPE_CHECKING:
    from matching.service.audit import DecisionLog

FLAG_BATCH = 32  # projects whose allocation flags are written at once
YIELD_S = 0.5  # the longest a batch of flags waits for the event path to be idle
CITE_SLICE = 8  # allocated pairs cited per turn of the event loop (`_cited`)


class AllocationFlags:
    """Mixed into `Proposals`, whose state it shares: a flag and a reconciliation of the same
    project wait for each other (`_busy`), and the map they write is the one the event path
    reads."""

    matches: Aggregates[Match]
    engine: Engine
    new: NewMatches
    audit: DecisionLog | None
    allocated: dict[str, str]  # project → offer, as the stored flags say
    as_of: int | None  # the market version of that allocation
    flagged: Allocation | None = None  # the allocation `allocated` is the map of (None: seeded)
    settled_as_of: int | None  # every flag holds as of this version
    _busy: dict[str, asyncio.Event]
    # the event path (consumed events): each batch of flags waits until it is idle, for at
    # most `yield_s` (set by the composition root; None: no waiting)
    foreground: Foreground | None = None
    yield_s: float = YIELD_S

    async def flag(self, allocation: Allocation) -> int:
        """Set the `allocated` flag of every match whose pair entered or left the allocation
        since the one the stored flags say; a newly allocated pair without a match is proposed.
        The new map applies at once to the event path (which may reconcile a project while this
        runs); returns how many projects moved. The writes go in batches, the event loop free
        between them (HTTP and the consumers are served while a large move is written)."""
        before, after, as_of = self.allocated, allocation.as_map(), allocation.market_version
        flagged, self.flagged = self.flagged, allocation
        self.allocated, self.as_of = after, as_of
        if flagged is not None and before is flagged.as_map():  # the columns say what moved
            moved = allocation.moved_since(flagged)
        else:  # the stored flags seeded the map
            moved = sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))
        for i in range(0, len(moved), FLAG_BATCH):  # distinct matches: their writes overlap
            await self._make_way()
            batch = moved[i : i + FLAG_BATCH]
            cited = await self._cited([(pid, after[pid]) for pid in batch if pid in after])
            flags = [
                (pid, offers[pid], pair_in)
                for pid in batch
                for offers, pair_in in ((before, False), (after, True))
                if pid in offers
            ]
            await self._flag_all(flags, as_of, cited)
            await asyncio.sleep(0)
        self.settled_as_of = as_of
        return len(moved)

    async def _make_way(self) -> None:
        if self.foreground is not None:
            await self.foreground.idle(self.yield_s)

    async def _cited(self, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], Proposal]:
        """The allocated pairs' proposals with the breakdowns their decisions cite, a
        vectorised pass per slice of pairs (one `engine.proposal` with breakdowns per flag
        was the largest share of the matcher's CPU in bench-flow: ~10%, py-spy). The event
        loop runs between slices: a pair beyond its project's top k ranks by a pass over
        every offer, and a batch's pairs in one go held the consumers for up to a second
        under load (loop lag p99 1 s in bench-flow's half step after the overload)."""
        cited: dict[tuple[str, str], Proposal] = {}
        if self.audit is None:
            return cited
        for i in range(0, len(pairs), CITE_SLICE):
            if i:
                await asyncio.sleep(0)
            found = self.engine.proposals_of(pairs[i : i + CITE_SLICE], allocated=False)
            cited.update({(p.project_id, p.offer_id): p for p in found if p is not None})
        return cited

    def _cite_again(
        self, cited: dict[tuple[str, str], Proposal], pairs: list[tuple[str, str]]
    ) -> dict[tuple[str, str], Proposal]:
        """`cited` with those of `pairs` it lacks (not eligible when cited, or not cited),
        proposed again in one pass (`engine.proposals_of`)."""
        again = [pair for pair in pairs if pair not in cited]
        if not again:
            return cited
        found = self.engine.proposals_of(again, allocated=False)
        return {**cited, **{pair: p for pair, p in zip(again, found, strict=True) if p}}

    async def _flag_all(
        self,
        flags: list[tuple[str, str, bool]],
        as_of: int,
        cited: dict[tuple[str, str], Proposal],
    ) -> None:
        """Flags of a batch of projects (each `(project, offer, allocated)`): the allocated
        pairs' decisions logged in one insert, then every flag in one field update of the
        matches (`allocated`, `allocated_as_of` and the version: nothing read, nothing else
        rewritten; a match already flagged so is left alone), and the allocated pairs that
        have no match yet proposed in one insert. It was a read of each match and a rewrite
        of the whole match (the decision was recorded in its packed `decisions`)."""
        pids = sorted({pid for pid, _, _ in flags})
        # held like a reconciliation holds them: one reconciling a project meanwhile would read
        # a match this batch is about to write and lose the compare-and-set with a 409
        while busy := [self._busy[p] for p in pids if p in self._busy]:
            await busy[0].wait()
        done = asyncio.Event()
        self._busy.update(dict.fromkeys(pids, done))
        try:
            if self.audit is not None:  # logged before the flags that they explain
                cited = self._cite_again(cited, [(p, o) for p, o, a in flags if a])
                decided = [
                    (match_id(pid, oid), q)
                    for pid, oid, allocated in flags
                    if allocated and (q := cited.get((pid, oid))) is not None
                ]
                await self.audit.log_many("allocated", decided)
            # the pairs that left first, in a write of their own: which of their matches
            # are absent matters to nobody (a batch that missed one looked up every match)
            off, on = ({"allocated": a, "allocated_as_of": as_of} for a in (False, True))
            left = {match_id(pid, oid): off for pid, oid, allocated in flags if not allocated}
            came = {match_id(pid, oid): on for pid, oid, allocated in flags if allocated}
            if left:
                await self.matches.set_fields(left, unless="allocated", report_absent=False)
            absent = await self.matches.set_fields(came, unless="allocated") if came else set()
            # the allocated pairs without a match: proposed so, as cited (or all at once)
            has = self.engine.has_project
            missing = [(p, o) for p, o, a in flags if a and match_id(p, o) in absent and has(p)]
            cited = self._cite_again(cited, missing)
            proposed = [(cited[pair], True) for pair in missing if pair in cited]
            if proposed:
                await self.new.insert(await self.new.make(proposed, as_of, {}))
        finally:
            for pid in pids:
                del self._busy[pid]
            done.set()
