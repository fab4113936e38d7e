"""The capacity-aware allocation of a market: a pure function of a `MarketSnapshot`, so that it
can run in a worker thread while the engine keeps changing on the event loop."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from matching.domain.allocation import allocate
from matching.domain.preferences import SnapshotLists
from matching.domain.results import Allocation, Assignment
from matching.domain.snapshot import MarketSnapshot

Progress = Callable[[str, int, int], None]  # (stage, done, total)


def allocate_market(m: MarketSnapshot, progress: Progress | None = None) -> Allocation:
    live = m.live
    order = live[np.argsort(m.project_rank[live])].tolist()
    P, O = m.projects, m.offers
    result = allocate(
        order,
        SnapshotLists(m, live, progress),
        amount=P["amount"].tolist(),
        tmax=O["tmax"].tolist(),
        cap=O["cap"].tolist(),
        deals=O["deals_left"].tolist(),
        rank=m.project_rank.tolist(),
        progress=progress,
    )
    pid, oid = m.project_ids, m.offer_ids
    assignments = [
        Assignment(str(pid[p]), str(oid[o]), result.amounts[p])
        for p, o in result.assignment.items()
    ]
    return Allocation(
        assignments=sorted(assignments, key=lambda a: a.project_id),
        stable=result.stable,
        blocking_pairs=sorted((str(pid[p]), str(oid[o])) for p, o in result.blocking),
        repair_rounds=result.rounds,
        proposals_made=result.proposals,
        market_version=m.version,
    )
