"""The incremental matching engine: what the matching service asks of the market's state
(`state.py`, composed, not inherited) — ranked proposals on both sides with score breakdowns
(read from the state's caches by `ranking.py`, composed too), the "why (not)" of a pair,
what-if advice, and the stable, capacity-aware allocation (computed from a snapshot: here when
asked, or elsewhere and adopted; kept until the market changes)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import date

from matching.domain import eligibility, explanations, offerkernels, offerscores, scoring
from matching.domain.advice import what_if
from matching.domain.columns import OfferTable, ProjectTable
from matching.domain.latest import LatestAllocation
from matching.domain.market import allocate_market
from matching.domain.model import Offer, Project
from matching.domain.ranking import Ranking
from matching.domain.results import (
    Advice,
    Allocation,
    Delta,
    Explanation,
    Proposal,
)
from matching.domain.snapshot import MarketSnapshot
from matching.domain.state import MarketState, Progress
from matching.domain.topcache import TopCache

__all__ = ["Advice", "Allocation", "Delta", "Explanation", "MatchEngine", "Proposal"]


class MatchEngine:
    def __init__(
        self, as_of: date, top_k: int = 10, depth: int | None = None, pref_depth: int = 32
    ) -> None:
        self.market = MarketState(as_of, top_k, depth, pref_depth)
        self._alloc = LatestAllocation()
        self._ranking = Ranking(self.market, self.allocation_map)

    # ---- the market's state: its changes, and what the queries read ---------------------------
    def upsert_project(self, project: Project) -> Delta:
        return self.market.upsert_project(project)

    def remove_project(self, project_id: str) -> Delta:
        return self.market.remove_project(project_id)

    def upsert_offer(self, offer: Offer) -> Delta:
        return self.market.upsert_offer(offer)

    def remove_offer(self, offer_id: str) -> Delta:
        return self.market.remove_offer(offer_id)

    def set_capacity(
        self, offer_id: str, capacity_cny: int, deals_taken: int | None = None
    ) -> Delta:
        return self.market.set_capacity(offer_id, capacity_cny, deals_taken)

    def load(
        self,
        projects: Iterable[Project] = (),
        offers: Iterable[Offer] = (),
        progress: Progress | None = None,
        delta: bool = True,
    ) -> Delta:
        offerkernels.warm_up()  # else the first offer change after the load pays ~0.3 s
        offerscores.warm_up()
        return self.market.load(projects, offers, progress, delta)

    def advance(self, as_of: date, progress: Progress | None = None) -> Delta:
        return self.market.advance(as_of, progress)

    def snapshot(self) -> MarketSnapshot:
        return self.market.snapshot()

    def snapshot_in_slices(self) -> Iterator[MarketSnapshot | None]:
        return self.market.snapshot_in_slices()

    @property
    def version(self) -> int:
        return self.market.version

    @property
    def as_of(self) -> date:
        return self.market.as_of

    @property
    def as_of_ord(self) -> int:
        return self.market.as_of_ord

    @property
    def top_k(self) -> int:
        return self.market.top_k

    @property
    def projects(self) -> ProjectTable:
        return self.market.projects

    @property
    def offers(self) -> OfferTable:
        return self.market.offers

    @property
    def ranked(self) -> TopCache:
        return self.market.ranked

    @property
    def project_models(self) -> dict[str, Project]:
        return self.market.project_models

    @property
    def offer_models(self) -> dict[str, Offer]:
        return self.market.offer_models

    # ---- queries: the proposals (`ranking.py`), the "why (not)", advice ------------------------
    def pair_scores(self, project_id: str, offer_id: str) -> tuple[int, int] | None:
        """Both views' quantised totals of an eligible pair (None if not eligible)."""
        return self._ranking.pair_scores(project_id, offer_id)

    def proposals_for_project(
        self, project_id: str, breakdowns: bool = True, allocated: bool = True
    ) -> list[Proposal]:
        """The top k eligible offers by combined score. With `allocated`, the offer of the
        current allocation is marked, and appended (with its true rank) if it lies beyond the
        top k; this computes the allocation if a change made it stale. Without, `allocated`
        is None on every proposal and nothing beyond the scoring caches is touched."""
        return self.proposals_for_projects([project_id], breakdowns, allocated).get(project_id, [])

    def proposals_for_projects(
        self,
        project_ids: Iterable[str],
        breakdowns: bool = True,
        allocated: bool = True,
        only: Mapping[str, Collection[str]] | None = None,
    ) -> dict[str, list[Proposal]]:
        """`proposals_for_project` for many projects in one vectorised pass; with `only`,
        just the proposals of those offers of each project (the rest are not built: a wide
        change stores the few pairs that moved in each of a hundred top ks)."""
        return self._ranking.for_projects(project_ids, breakdowns, allocated, only)

    def allocated_proposals(
        self, project_ids: Iterable[str], breakdowns: bool = True
    ) -> list[Proposal]:
        """The allocated pair of each of these projects that has one, as a proposal."""
        return self._ranking.allocated(project_ids, breakdowns)

    def proposal(
        self, project_id: str, offer_id: str, breakdowns: bool = True, allocated: bool = True
    ) -> Proposal | None:
        """One eligible pair as a proposal, ranked among all the project's eligible offers
        (None if it is not eligible, or either side is unknown)."""
        if not (self.has_project(project_id) and self.has_offer(offer_id)):
            return None
        if self.pair_scores(project_id, offer_id) is None:
            return None
        row, orow = self.projects.row[project_id], self.offers.row[offer_id]
        rank = self._ranking.rank(row, orow)
        return self._ranking.proposals([row], [orow], [rank], breakdowns, allocated)[0]

    def proposals_of(
        self, pairs: Sequence[tuple[str, str]], breakdowns: bool = True, allocated: bool = True
    ) -> list[Proposal | None]:
        """`proposal` of each of these (project, offer) pairs, aligned with them, in one
        vectorised pass: eligibility and scores of all the pairs at once, the ranks of those
        beyond their project's top k in one pass over those projects' eligible pairs."""
        return self._ranking.of_pairs(pairs, breakdowns, allocated)

    def with_breakdowns(self, proposals: list[Proposal]) -> list[Proposal]:
        """These proposals (asked without breakdowns) with their score breakdowns, in one
        vectorised pass: the service computes them only for the pairs that are new or moved."""
        return self._ranking.with_breakdowns(proposals)

    def proposals_for_offer(
        self,
        offer_id: str,
        breakdowns: bool = True,
        limit: int | None = None,
        allocated: bool = True,
    ) -> list[Proposal]:
        """The projects that have this offer among their proposals, best first (ties by id)."""
        return self._ranking.for_offer(offer_id, breakdowns, limit, allocated)

    def explain(self, project_id: str, offer_id: str, fresh: bool = True) -> Explanation:
        """Why (not) this pair; `allocated` as in `allocation_map(fresh)`."""
        if project_id not in self.projects.row:
            raise KeyError(f"unknown project {project_id!r}")
        if offer_id not in self.offers.row:
            raise KeyError(f"unknown offer {offer_id!r}")
        prow, orow = self.projects.row[project_id], self.offers.row[offer_id]
        P, O = self._ranking.pairs([prow], [orow])
        failed = eligibility.failed_rules(P, O, self.as_of_ord)
        ((ev, fv),) = explanations.breakdowns(P, O)
        e_q, f_q = scoring.totals(P, O)
        visible = self._ranking.visible(prow)
        return Explanation(
            project_id=project_id,
            offer_id=offer_id,
            eligible=not failed,
            reasons=eligibility.reasons(
                failed, self.project_models[project_id], self.offer_models[offer_id], self.as_of
            ),
            score=None if failed else scoring.combined(int(e_q[0]), int(f_q[0])),
            enterprise_view=ev,
            funder_view=fv,
            rank=visible.index(orow) + 1 if orow in visible else None,
            allocated=self.allocation_map(fresh).get(project_id) == offer_id,
        )

    def advice(self, project_id: str, limit: int = 10) -> list[Advice]:
        return what_if(self.market, self.project_models[project_id], limit)

    # ---- allocation ----------------------------------------------------------------------------
    def allocation(self, progress: Progress | None = None) -> Allocation:
        """The allocation at the current version (computed here, now, if a change made it stale;
        the matching service computes it in a worker thread instead, see `adopt`)."""
        if not self._alloc.holds_at(self.version):
            self.adopt(allocate_market(self.snapshot(), progress))
        assert self._alloc.latest is not None
        return self._alloc.latest

    def adopt(self, allocation: Allocation) -> None:
        """Take an allocation computed elsewhere from `snapshot()`: the latest one known, and the
        current one if nothing changed since its snapshot."""
        self._alloc.adopt(allocation)

    @property
    def latest_version(self) -> int | None:
        """The market version of the latest allocation computed (None: none yet)."""
        return self._alloc.version

    def has_project(self, project_id: str) -> bool:
        return project_id in self.projects.row

    def has_offer(self, offer_id: str) -> bool:
        return offer_id in self.offers.row

    def allocation_map(self, fresh: bool = True) -> dict[str, str]:
        """Project id → allocated offer id: of the current allocation, or (`fresh` false) of the
        latest one computed, never computing (empty if none was)."""
        return self._alloc.as_map(self.allocation() if fresh else self._alloc.latest)
