"""What the reconciliation of a batch reads before it decides (`proposals.py`): the stored
matches of its projects or pairs (`held`), and the breakdowns its proposals need
(`with_views`)."""

from __future__ import annotations

import asyncio
from collections.abc import Collection

from g60_chassis.aggregates import Aggregates
from matching.domain.match import Match, match_id
from matching.domain.results import Proposal
from matching.service.ports import Engine
from matching.service.refreshes import packed
from matching.service.retraction import Retractions, StoredMatch

Held = dict[str, dict[str, Match | StoredMatch]]  # project → offer → its match, loaded or raw


class Reads:
    def __init__(
        self, matches: Aggregates[Match], retractions: Retractions, engine: Engine
    ) -> None:
        self.matches, self.retractions, self.engine = matches, retractions, engine

    async def held(
        self,
        plan: dict[str, list[Proposal]],
        stale: dict[str, set[str]],
        by_pair: bool,
        fresh: Collection[str] = (),
        unseen: str | None = None,
    ) -> tuple[Held, dict[tuple[str, str], StoredMatch]]:
        """The stored matches of these projects by offer: all of each (by the indexed
        `project_id`), or `by_pair` those of the pairs in `plan` (by id) and of `stale` (by
        pair: only ever retracted, `retraction.py`), raw (the planned ones are refreshed by
        field updates, `refreshes.py`; one an older release stored is loaded); not of the
        `unseen` offer (see `apply`) nor of a `fresh` project (see `reconcile`)."""
        if not by_pair:
            ids = [p for p in plan if p not in fresh]
            every = await asyncio.gather(*(self.matches.every({"project_id": p}) for p in ids))
            by_project = dict(zip(ids, every, strict=True))
            return {pid: {m.offer_id: m for m in by_project.get(pid, [])} for pid in plan}, {}
        planned = {(pid, p.offer_id) for pid, mine in plan.items() for p in mine}
        pairs = sorted(pair for pair in planned if pair[1] != unseen)
        stale_pairs = {(pid, oid) for pid in plan for oid in stale.get(pid, ())}
        gone = sorted(pair for pair in stale_pairs - planned if pair[1] != unseen)
        raw = await self.retractions.read(match_id(*pair) for pair in [*pairs, *gone])
        found = dict(zip([*pairs, *gone], raw, strict=True))
        old = [pair for pair in pairs if (m := found[pair]) and not packed(m)]  # loaded
        loaded = await asyncio.gather(*(self.matches.get(match_id(*pair)) for pair in old))
        held: Held = {pid: {} for pid in plan}
        for pid, oid in pairs:
            if (m := found[(pid, oid)]) and packed(m):
                held[pid][oid] = m
        for (pid, oid), match in zip(old, loaded, strict=True):
            if match is not None:
                held[pid][oid] = match
        shown = {pair: m for pair in gone if (m := found[pair]) is not None}
        return held, shown

    def with_views(
        self,
        plan: dict[str, list[Proposal]],
        held: Held,
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
