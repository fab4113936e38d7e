"""The engine's state and how it is kept up to date incrementally.

State: offers and projects as columns (`columns.py`) and two per-project caches of its best
eligible offers (`topcache.py`): by the combined score (the proposals: top k, kept `depth` deep)
and by the enterprise's view with the funder's score alongside (the allocation's preference
lists). A new, changed or withdrawn project is scored against every offer in one vectorised
pass; an offer against every project in one pass, entering or leaving all caches at once. Each
change returns a `Delta` of proposals. The allocation is a pure function of the state (`market.py`,
from a `snapshot`), and `version` says which state: +1 on every change."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import date
from typing import Any

import numpy as np

from matching.domain import eligibility, offerkernels, pairs
from matching.domain.columns import OfferTable, ProjectTable
from matching.domain.model import Offer, Project
from matching.domain.pairkernels import top_per_row
from matching.domain.results import Delta
from matching.domain.snapshot import SLICE, MarketSnapshot, Source, take, take_in_slices
from matching.domain.topcache import I64, TopCache

Progress = Callable[[str, int, int], None]  # (stage, done, total)
SMALL = 8  # up to this many rows are refreshed one by one, more as a block


class MarketState:
    def __init__(
        self, as_of: date, top_k: int = 10, depth: int | None = None, pref_depth: int = 32
    ) -> None:
        if top_k < 1:
            raise ValueError("top_k must be at least 1")
        self.as_of, self.as_of_ord, self.top_k = as_of, as_of.toordinal(), top_k
        self.offers, self.projects = OfferTable(), ProjectTable()
        self.offer_models: dict[str, Offer] = {}
        self.project_models: dict[str, Project] = {}
        self.ranked = TopCache(max(depth or top_k + 8, top_k))  # by combined score
        self.prefs = TopCache(max(pref_depth, 2))  # by the enterprise's view; aux: funder's
        self.version = 0  # the market version: +1 on every change

    def _changed(self) -> None:
        self.version += 1

    def snapshot(self) -> MarketSnapshot:
        """A copy of what the allocation reads, at the current version, in one go."""
        return take(self._source())

    def snapshot_in_slices(self, rows: int = SLICE) -> Iterator[MarketSnapshot | None]:
        """The same copy, `rows` project rows at a time (None between slices: the caller lets
        events and requests run; the copy is still of one version), the snapshot last."""
        return take_in_slices(lambda: self.version, self._source, rows)

    def _source(self) -> Source:
        return Source(
            self.version,
            self.as_of_ord,
            self.projects.view(),
            self.offers.view(),
            self.projects.ids,
            self.offers.ids,
            self.projects.id_order(),
            self.offers.id_order(),
            self.prefs,
        )

    # ---- projects ------------------------------------------------------------------------------
    def upsert_project(self, project: Project) -> Delta:
        self.project_models[project.id] = project
        row = self.projects.put(project.id, ProjectTable.encode(project, self.as_of))
        self._grow_caches()
        rows = np.array([row], dtype=np.int64)
        before = self._snapshot(rows)
        self._refresh(rows)
        return self._diff(rows, before, self._snapshot(rows))

    def remove_project(self, project_id: str) -> Delta:
        row = self.projects.row.get(project_id)
        if row is None:
            return Delta()
        rows = np.array([row], dtype=np.int64)
        before = self._snapshot(rows)
        self.ranked.clear(row)
        self.prefs.clear(row)
        self.projects.remove(project_id)
        del self.project_models[project_id]
        self._changed()
        return self._diff(rows, before, self._snapshot(rows), project_names={row: project_id})

    # ---- offers --------------------------------------------------------------------------------
    def upsert_offer(self, offer: Offer) -> Delta:
        held = self._held(offer.id)  # a new offer's row is in no list (see remove)
        self.offer_models[offer.id] = offer
        row = self.offers.put(offer.id, OfferTable.encode(offer))
        return self._offer_changed(row, held=held)

    def remove_offer(self, offer_id: str) -> Delta:
        row = self.offers.row.get(offer_id)
        if row is None:
            return Delta()
        held = self._held(offer_id)
        self.offers.remove(offer_id)
        del self.offer_models[offer_id]
        return self._offer_changed(row, offer_names={row: offer_id}, held=held)

    def _held(self, offer_id: str) -> I64:
        """The rows whose lists may hold this offer: those eligible for it as it stands (the
        lists hold eligible pairs only, and every change of either side rescores its pairs),
        found in one compiled pass instead of comparing every cell of both caches."""
        row = self.offers.row.get(offer_id)
        if row is None:
            return np.zeros(0, np.int64)
        return pairs.offer_rows(self.projects.view(), self.offers.one(row), self.as_of_ord)

    def set_capacity(
        self, offer_id: str, capacity_cny: int, deals_taken: int | None = None
    ) -> Delta:
        offer = self.offer_models.get(offer_id)
        if offer is None:
            return Delta()
        update: dict[str, Any] = {"capacity_cny": max(int(capacity_cny), 0)}
        if deals_taken is not None:
            update["deals_taken"] = max(int(deals_taken), 0)
        return self.upsert_offer(Offer.model_validate({**offer.model_dump(), **update}))

    def _offer_changed(
        self, row: int, offer_names: dict[int, str] | None = None, held: I64 | None = None
    ) -> Delta:
        """Score one offer against every project; touch only the lists it enters or leaves
        (`held`: the rows that may list it, see `_held`)."""
        P, O1 = self.projects.view(), self.offers.one(row)
        prows, e_q, f_q = pairs.offer_vs_projects(P, O1, self.as_of_ord)
        c_q = e_q + f_q
        can = self.ranked.candidates(prows, c_q)
        held = np.zeros(0, np.int64) if held is None else held
        in_ranked = offerkernels.places(self.ranked.off, held, row)
        in_prefs = offerkernels.places(self.prefs.off, held, row)
        affected = np.union1d(np.union1d(in_ranked[0], prows[can]), in_prefs[0])
        before = self._snapshot(affected)
        self.ranked.remove(row, in_ranked)
        self.prefs.remove(row, in_prefs)
        if in_ranked[0].size:  # only the rows it left changed: asked again, the rest stand
            at = np.flatnonzero(np.isin(prows, in_ranked[0]))
            can[at] = self.ranked.candidates(prows[at], c_q[at])
        sel = self.prefs.candidates(prows, e_q)
        if can.any() or sel.any():
            rank = self.offers.id_order()  # ties by offer id
            self.ranked.insert(prows[can], row, c_q[can], np.zeros(int(can.sum()), np.int64), rank)
            self.prefs.insert(prows[sel], row, e_q[sel], f_q[sel], rank)
        self._refresh(affected[self._short(affected)])
        self._changed()
        return self._diff(affected, before, self._snapshot(affected), offer_names=offer_names)

    # ---- many at once --------------------------------------------------------------------------
    def load(
        self,
        projects: Iterable[Project] = (),
        offers: Iterable[Offer] = (),
        progress: Progress | None = None,
        delta: bool = True,
    ) -> Delta:
        """Upsert many projects and offers at once, scoring in blocks (the batch path)."""
        offers, projects = list(offers), list(projects)
        if offers:
            self.offer_models.update((o.id, o) for o in offers)
            self.offers.put_many([o.id for o in offers], [OfferTable.encode(o) for o in offers])
        if projects:
            self.project_models.update((p.id, p) for p in projects)
            encoded = [ProjectTable.encode(p, self.as_of) for p in projects]
            new_rows = self.projects.put_many([p.id for p in projects], encoded)
        self._grow_caches()
        rows = (
            self._live_projects() if offers else (new_rows if projects else np.zeros(0, np.int64))
        )
        before = self._snapshot(rows) if delta else None
        self._refresh(rows, progress)
        self._changed()
        return self._diff(rows, before, self._snapshot(rows)) if before is not None else Delta()

    def advance(self, as_of: date, progress: Progress | None = None) -> Delta:
        """Move the "as of" day (qualification expiry, years, validity) and rescore."""
        self.as_of, self.as_of_ord = as_of, as_of.toordinal()
        projects = list(self.project_models.values())
        return self.load(projects, list(self.offer_models.values()), progress)

    def eligible_offer_rows(self, project: Project) -> I64:
        """Offer rows a (possibly hypothetical, not stored) project is eligible for."""
        P1 = {k: np.asarray([v]) for k, v in ProjectTable.encode(project, self.as_of).items()}
        P1["active"] = np.asarray([True])
        ok = eligibility.eligible(P1, self.offers.view(), self.as_of_ord)
        return np.flatnonzero(ok).astype(np.int64)

    # ---- caches --------------------------------------------------------------------------------
    def _live_projects(self) -> I64:
        return np.flatnonzero(self.projects.view()["active"]).astype(np.int64)

    def _grow_caches(self) -> None:
        self.ranked.ensure(self.projects.capacity)
        self.prefs.ensure(self.projects.capacity)

    def _short(self, rows: I64) -> Any:
        """Rows whose lists ran short of what they must show (they are refilled)."""
        r, p = self.ranked, self.prefs
        return (~r.exhaustive[rows] & (r.count[rows] < self.top_k)) | (
            ~p.exhaustive[rows] & (p.count[rows] < p.depth // 2)
        )

    def _refresh(self, rows: I64, progress: Progress | None = None) -> None:
        """Recompute both lists of these project rows from every offer."""
        self._changed()
        P, O, ids = self.projects.view(), self.offers.view(), self.offers.ids
        if rows.size <= SMALL:
            for row in rows.tolist():
                orows, e_q, f_q = pairs.project_vs_offers(self.projects.one(row), O, self.as_of_ord)
                self.ranked.fill(row, orows, e_q + f_q, np.zeros_like(e_q), ids)
                self.prefs.fill(row, orows, e_q, f_q, ids)
            return
        rank, done = self.offers.id_order(), 0
        for ch in pairs.blocks(P, rows, O, self.as_of_ord):
            n, m, col_rank = ch.rows.size, ch.offers.size, rank[ch.offers]
            zero = np.zeros_like(ch.e_q)
            cols, keys, _, count = top_per_row(
                n, ch.ri, ch.ci, ch.e_q + ch.f_q, zero, col_rank, self.ranked.depth
            )
            offs = np.where(cols >= 0, ch.offers[np.maximum(cols, 0)] if m else -1, -1)
            self.ranked.set_rows(ch.rows, offs, keys, np.zeros_like(keys), count)
            cols, keys, f, count = top_per_row(
                n, ch.ri, ch.ci, ch.e_q, ch.f_q, col_rank, self.prefs.depth
            )
            offs = np.where(cols >= 0, ch.offers[np.maximum(cols, 0)] if m else -1, -1)
            self.prefs.set_rows(ch.rows, offs, keys, f, count)
            done += n
            if progress:
                progress("scoring", done, int(rows.size))

    def _snapshot(self, rows: I64) -> tuple[I64, I64]:
        k = self.top_k
        return self.ranked.off[rows, :k].astype(np.int64), self.ranked.key[rows, :k].copy()

    def _diff(
        self,
        rows: I64,
        before: tuple[I64, I64],
        after: tuple[I64, I64],
        project_names: dict[int, str] | None = None,
        offer_names: dict[int, str] | None = None,
    ) -> Delta:
        (bo, bk), (ao, ak) = before, after
        entered, left, rescored = offerkernels.moves(rows, bo, bk, ao, ak)
        if not (entered[0] or left[0] or rescored[0]):
            return Delta()
        pids, oids = self.projects.ids, self.offers.ids
        pnames, onames = project_names or {}, offer_names or {}
        # names looked up once per row and once per distinct offer, not per pair (a wide
        # offer's delta is thousands of pairs over a few offers: 2 ms of its 10 ms of CPU)
        pn = {r: str(pnames.get(r) or pids[r]) for r in {*entered[0], *left[0], *rescored[0]}}

        def pairs_of(r: list[int], o: list[int]) -> list[tuple[str, str]]:
            on = {x: str(onames.get(x) or oids[x]) for x in set(o)}
            return [(pn[i], on[x]) for i, x in zip(r, o, strict=True)]

        return Delta(pairs_of(*entered), pairs_of(*left), pairs_of(*rescored))
