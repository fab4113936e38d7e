"""The incremental matching engine.

State: the offers and projects as columns (`tables.py`), and per project a cache of its best
eligible offers by combined score (top `depth`, at least `top_k`). A new, changed or withdrawn
project is scored against every offer in one vectorised pass; a new, changed or withdrawn offer
(or a capacity change) against every project in one pass, and only the projects whose cache it
enters or leaves are touched. Each change returns a `Delta` of proposals added, removed and
changed. The allocation is a pure function of the state, computed lazily when asked and cached
until the next change, so incremental and batch results are equal by construction."""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt

from matching.domain import rules
from matching.domain.allocation import Result, allocate
from matching.domain.model import Offer, Project
from matching.domain.tables import (
    ENTERPRISE_CRITERIA,
    FUNDER_CRITERIA,
    NO_LIMIT,
    OfferTable,
    ProjectTable,
)

Key = tuple[float, str]  # (-combined score, offer id): sorts best first, ties by id
Pair = tuple[str, str]  # (project id, offer id)


@dataclass(frozen=True)
class Proposal:
    project_id: str
    offer_id: str
    rank: int
    score: float
    enterprise_score: float
    funder_score: float
    allocated: bool
    enterprise_view: dict[str, Any] | None = None
    funder_view: dict[str, Any] | None = None


@dataclass
class Delta:
    added: list[Pair] = field(default_factory=list)
    removed: list[Pair] = field(default_factory=list)
    changed: list[Pair] = field(default_factory=list)

    def merge(self, other: Delta) -> Delta:
        self.added += other.added
        self.removed += other.removed
        self.changed += other.changed
        return self

    @property
    def projects(self) -> set[str]:
        return {p for p, _ in (*self.added, *self.removed, *self.changed)}


@dataclass(frozen=True)
class Explanation:
    project_id: str
    offer_id: str
    eligible: bool
    reasons: list[dict[str, Any]]
    score: float | None
    enterprise_view: dict[str, Any]
    funder_view: dict[str, Any]


@dataclass(frozen=True)
class Advice:
    change: str
    detail: dict[str, Any]
    gain: int  # how many more offers become eligible


@dataclass(frozen=True)
class Assignment:
    project_id: str
    offer_id: str
    amount_cny: int


@dataclass(frozen=True)
class Allocation:
    assignments: list[Assignment]
    stable: bool
    blocking_pairs: list[Pair]
    repair_rounds: int
    proposals_made: int

    def offer_of(self, project_id: str) -> str | None:
        for a in self.assignments:
            if a.project_id == project_id:
                return a.offer_id
        return None


class MatchEngine:
    def __init__(self, as_of: date, top_k: int = 10, depth: int | None = None) -> None:
        if top_k < 1:
            raise ValueError("top_k must be at least 1")
        self.as_of = as_of
        self.as_of_ord = as_of.toordinal()
        self.top_k = top_k
        self.depth = max(depth or top_k + 8, top_k)
        self.offers = OfferTable()
        self.projects = ProjectTable()
        self.offer_models: dict[str, Offer] = {}
        self.project_models: dict[str, Project] = {}
        self._cache: dict[str, list[Key]] = {}
        self._exhaustive: dict[str, bool] = {}
        self._holders: dict[str, set[str]] = {}  # offer id → projects caching it
        self._allocation: Allocation | None = None
        self._allocated: dict[str, str] = {}
        self._worst = np.zeros(0)  # per project row: the score an offer must reach to enter

    # ---- views of one row -------------------------------------------------------------------
    @staticmethod
    def _row(table: OfferTable | ProjectTable, row: int) -> dict[str, npt.NDArray[Any]]:
        return {name: col[row : row + 1] for name, col in table.cols.items()}

    def _project_vs_offers(self, row: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        P, O = self._row(self.projects, row), self.offers.view()
        ok = rules.eligible(P, O, self.as_of_ord)
        idx = np.flatnonzero(ok)
        if idx.size == 0:
            return idx, np.empty(0)
        Osub = {k: v[idx] for k, v in O.items()}
        e, f = rules.totals(P, Osub)
        return idx, (e + f) / 2.0

    # ---- the per-project cache ---------------------------------------------------------------
    def _top(
        self, idx: npt.NDArray[np.int64], combined: npt.NDArray[np.float64]
    ) -> tuple[list[Key], bool]:
        if idx.size > self.depth:
            threshold = np.partition(combined, idx.size - self.depth)[idx.size - self.depth]
            keep = combined >= threshold
            idx, combined = idx[keep], combined[keep]
        ids = self.offers.ids
        keys = sorted(
            (-round(float(c), 12), str(ids[i])) for i, c in zip(idx, combined, strict=True)
        )
        exhaustive = len(keys) <= self.depth
        return keys[: self.depth], exhaustive

    def _set_cache(self, project_id: str, keys: list[Key], exhaustive: bool) -> None:
        for _, oid in self._cache.get(project_id, ()):
            self._holders.get(oid, set()).discard(project_id)
        self._cache[project_id] = keys
        self._exhaustive[project_id] = exhaustive
        for _, oid in keys:
            self._holders.setdefault(oid, set()).add(project_id)
        row = self.projects.row.get(project_id)
        if row is not None:
            if self._worst.size < self.projects.capacity:
                self._worst = np.resize(self._worst, self.projects.capacity)
            self._worst[row] = -math.inf if exhaustive or not keys else -keys[-1][0]

    def _refresh_project(self, project_id: str) -> None:
        idx, combined = self._project_vs_offers(self.projects.row[project_id])
        self._set_cache(project_id, *self._top(idx, combined))

    def _visible(self, project_id: str) -> list[Key]:
        return self._cache.get(project_id, [])[: self.top_k]

    @staticmethod
    def _diff(project_id: str, before: list[Key], after: list[Key]) -> Delta:
        b = {oid: (i, s) for i, (s, oid) in enumerate(before)}
        a = {oid: (i, s) for i, (s, oid) in enumerate(after)}
        return Delta(
            added=[(project_id, o) for o in a if o not in b],
            removed=[(project_id, o) for o in b if o not in a],
            changed=[(project_id, o) for o in a if o in b and a[o] != b[o]],
        )

    def _changed(self) -> None:
        self._allocation = None

    # ---- projects ----------------------------------------------------------------------------
    def upsert_project(self, project: Project) -> Delta:
        before = self._visible(project.id)
        self.project_models[project.id] = project
        self.projects.put(project.id, ProjectTable.encode(project, self.as_of))
        self._refresh_project(project.id)
        self._changed()
        return self._diff(project.id, before, self._visible(project.id))

    def remove_project(self, project_id: str) -> Delta:
        before = self._visible(project_id)
        if project_id not in self.projects.row:
            return Delta()
        self._set_cache(project_id, [], True)
        del self._cache[project_id], self._exhaustive[project_id]
        self.projects.remove(project_id)
        self.project_models.pop(project_id, None)
        self._changed()
        return self._diff(project_id, before, [])

    # ---- offers ------------------------------------------------------------------------------
    def upsert_offer(self, offer: Offer) -> Delta:
        self.offer_models[offer.id] = offer
        row = self.offers.put(offer.id, OfferTable.encode(offer))
        return self._offer_changed(offer.id, row)

    def remove_offer(self, offer_id: str) -> Delta:
        if offer_id not in self.offers.row:
            return Delta()
        self.offer_models.pop(offer_id, None)
        self.offers.remove(offer_id)
        delta = Delta()
        for pid in sorted(self._holders.pop(offer_id, set())):
            before = self._visible(pid)
            keys = [k for k in self._cache[pid] if k[1] != offer_id]
            self._cache[pid] = keys
            if len(keys) < self.top_k and not self._exhaustive[pid]:
                self._refresh_project(pid)
            delta.merge(self._diff(pid, before, self._visible(pid)))
        self._changed()
        return delta

    def set_capacity(
        self, offer_id: str, capacity_cny: int, deals_taken: int | None = None
    ) -> Delta:
        offer = self.offer_models.get(offer_id)
        if offer is None:
            return Delta()
        update: dict[str, Any] = {"capacity_cny": max(int(capacity_cny), 0)}
        if deals_taken is not None:
            update["deals_taken"] = max(int(deals_taken), 0)
        return self.upsert_offer(offer.model_copy(update=update))

    def _offer_changed(self, offer_id: str, row: int) -> Delta:
        """Score one offer against every project; touch only the caches it enters or leaves."""
        P, O = self.projects.view(), self._row(self.offers, row)
        ok = rules.eligible(P, O, self.as_of_ord)
        idx = np.flatnonzero(ok)
        scores = np.full(ok.shape, -math.inf)
        if idx.size:
            e, f = rules.totals({k: v[idx] for k, v in P.items()}, O)
            scores[idx] = (e + f) / 2.0
        touched = set(self._holders.get(offer_id, set()))
        if idx.size:
            better = scores[idx] >= self._worst[idx]  # ties resolved below by the exact key
            touched.update(str(self.projects.ids[i]) for i in idx[better])
        delta = Delta()
        for pid in sorted(touched):
            before = self._visible(pid)
            keys = [k for k in self._cache.get(pid, []) if k[1] != offer_id]
            prow = self.projects.row[pid]
            if ok[prow]:
                key = (-round(float(scores[prow]), 12), offer_id)
                if self._exhaustive[pid] or (keys and key < keys[-1]):
                    bisect.insort(keys, key)
                    if len(keys) > self.depth:
                        keys = keys[: self.depth]
                        self._exhaustive[pid] = False
            self._set_cache(pid, keys, self._exhaustive[pid])
            if len(keys) < self.top_k and not self._exhaustive[pid]:
                self._refresh_project(pid)
            delta.merge(self._diff(pid, before, self._visible(pid)))
        self._changed()
        return delta

    # ---- queries -----------------------------------------------------------------------------
    def proposals_for_project(self, project_id: str, breakdowns: bool = True) -> list[Proposal]:
        allocated = self.allocation_map()
        out = []
        for rank, (neg, oid) in enumerate(self._visible(project_id), start=1):
            views = self._views(project_id, oid) if breakdowns else (None, None)
            out.append(
                Proposal(
                    project_id=project_id,
                    offer_id=oid,
                    rank=rank,
                    score=-neg,
                    enterprise_score=views[0]["total"] if views[0] else math.nan,
                    funder_score=views[1]["total"] if views[1] else math.nan,
                    allocated=allocated.get(project_id) == oid,
                    enterprise_view=views[0],
                    funder_view=views[1],
                )
            )
        return out

    def proposals_for_offer(self, offer_id: str) -> list[Proposal]:
        """The projects that have this offer among their proposals, by combined score."""
        allocated = self.allocation_map()
        out = []
        for pid in self._holders.get(offer_id, set()):
            for rank, (neg, oid) in enumerate(self._visible(pid), start=1):
                if oid == offer_id:
                    e, f = self._views(pid, oid)
                    out.append(
                        Proposal(
                            pid,
                            oid,
                            rank,
                            -neg,
                            e["total"],
                            f["total"],
                            allocated.get(pid) == oid,
                            e,
                            f,
                        )
                    )
        return sorted(out, key=lambda p: (-p.score, p.project_id))

    def _views(self, project_id: str, offer_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        P = self._row(self.projects, self.projects.row[project_id])
        O = self._row(self.offers, self.offers.row[offer_id])
        e = rules.breakdown(rules.enterprise_terms(P, O), P["ew"], ENTERPRISE_CRITERIA)
        f = rules.breakdown(rules.funder_terms(P, O), O["fw"], FUNDER_CRITERIA)
        return e, f

    def advice(self, project_id: str, limit: int = 8) -> list[Advice]:
        from matching.domain.advice import what_if

        return what_if(self, self.project_models[project_id], limit)

    def explain(self, project_id: str, offer_id: str) -> Explanation:
        from matching.domain.reasons import reasons_for

        if project_id not in self.projects.row:
            raise KeyError(f"unknown project {project_id!r}")
        if offer_id not in self.offers.row:
            raise KeyError(f"unknown offer {offer_id!r}")
        P = self._row(self.projects, self.projects.row[project_id])
        O = self._row(self.offers, self.offers.row[offer_id])
        checks = rules.rule_checks(P, O, self.as_of_ord)
        failed = [name for name in rules.RULES if not bool(np.ravel(checks[name])[0])]
        e, f = self._views(project_id, offer_id)
        return Explanation(
            project_id=project_id,
            offer_id=offer_id,
            eligible=not failed,
            reasons=reasons_for(
                failed, self.project_models[project_id], self.offer_models[offer_id], self.as_of
            ),
            score=round((e["total"] + f["total"]) / 2, 4) if not failed else None,
            enterprise_view=e,
            funder_view=f,
        )

    def eligible_count(self, project: Project) -> int:
        """How many offers a (possibly hypothetical) project is eligible for."""
        P = {
            k: np.asarray([v]) if np.ndim(v) == 0 else np.asarray([v], dtype=np.float64)
            for k, v in ProjectTable.encode(project, self.as_of).items()
        }
        P["active"] = np.asarray([True])
        return int(rules.eligible(P, self.offers.view(), self.as_of_ord).sum())

    # ---- allocation --------------------------------------------------------------------------
    def allocation(self) -> Allocation:
        if self._allocation is None:
            self._allocation = self._allocate()
            self._allocated = {a.project_id: a.offer_id for a in self._allocation.assignments}
        return self._allocation

    def allocation_map(self) -> dict[str, str]:
        self.allocation()
        return self._allocated

    def _allocate(self) -> Allocation:
        from matching.domain.preferences import EnginePreferences

        prefs = EnginePreferences(self)
        rows = sorted(self.projects.row.values(), key=lambda r: str(self.projects.ids[r]))
        O = self.offers.view()
        live = [int(r) for r in np.flatnonzero(O["active"])]
        capacity = {r: int(O["cap"][r]) for r in live}
        deals = {r: int(min(O["deals_left"][r], NO_LIMIT)) for r in live}
        result: Result = allocate(rows, prefs, capacity, deals)
        pid, oid = self.projects.ids, self.offers.ids
        return Allocation(
            assignments=[
                Assignment(str(pid[p]), str(oid[o]), prefs.amount(p, o))
                for p, o in sorted(result.assignment.items(), key=lambda x: str(pid[x[0]]))
            ],
            stable=result.stable,
            blocking_pairs=[(str(pid[p]), str(oid[o])) for p, o in result.blocking],
            repair_rounds=result.rounds,
            proposals_made=result.proposals,
        )

    def snapshot(self) -> tuple[dict[str, list[Key]], Sequence[Assignment]]:
        """Proposals and allocation, for comparing two engines (incremental vs batch)."""
        props = {pid: self._visible(pid) for pid in sorted(self._cache)}
        return props, self.allocation().assignments
