"""Both sides' preferences for the allocation, computed in blocks of projects against all offers
(eligibility first, scores only on eligible pairs), keeping each project's best `prefix` offers
by the enterprise's view and the funder's score of each; a project that runs out of its prefix
gets its complete list on demand. Ties break by id, so the order never depends on row layout."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from matching.domain import rules

if TYPE_CHECKING:
    from matching.domain.engine import MatchEngine

BLOCK = 512


class EnginePreferences:
    def __init__(self, engine: MatchEngine, prefix: int = 24) -> None:
        self.engine = engine
        self.prefix = prefix
        self.P = engine.projects.view()
        self.O = engine.offers.view()
        self.offer_rank = engine.offers.ranks()
        self.project_rank = engine.projects.ranks()
        self.lists: dict[int, list[int]] = {}
        self.fscore: dict[tuple[int, int], float] = {}
        self.order = [int(r) for r in np.argsort(self.project_rank) if self.P["active"][r]]
        self.position = {r: i for i, r in enumerate(self.order)}

    def _sorted(
        self, cols: npt.NDArray[np.int64], e: npt.NDArray[np.float64], limit: int | None
    ) -> list[int]:
        if limit is not None and cols.size > limit:
            threshold = np.partition(e, cols.size - limit)[cols.size - limit]
            keep = e >= threshold  # ties at the threshold all stay, then sort exactly
            cols, e = cols[keep], e[keep]
        order = np.lexsort((self.offer_rank[cols], -np.round(e, 12)))
        chosen = cols[order]
        return [int(c) for c in (chosen[:limit] if limit is not None else chosen)]

    def _block(self, start: int) -> None:
        rows = np.asarray(self.order[start : start + BLOCK], dtype=np.int64)
        Pb: dict[str, Any] = {}
        for k, v in self.P.items():
            Pb[k] = v[rows][:, None] if v.ndim == 1 else v[rows][:, None, :]
        Ob = {k: v[None, :] if v.ndim == 1 else v[None, :, :] for k, v in self.O.items()}
        ok = rules.eligible(Pb, Ob, self.engine.as_of_ord)
        r_idx, c_idx = np.nonzero(ok)
        if r_idx.size == 0:
            for r in rows:
                self.lists[int(r)] = []
            return
        Pp = {k: v[rows[r_idx]] for k, v in self.P.items()}
        Op = {k: v[c_idx] for k, v in self.O.items()}
        e, f = rules.totals(Pp, Op)
        bounds = np.searchsorted(r_idx, np.arange(len(rows) + 1))
        for i, r in enumerate(rows):
            lo, hi = bounds[i], bounds[i + 1]
            chosen = self._sorted(c_idx[lo:hi], e[lo:hi], self.prefix)
            self.lists[int(r)] = chosen
            fmap = dict(zip(c_idx[lo:hi].tolist(), f[lo:hi].tolist(), strict=True))
            for c in chosen:
                self.fscore[(int(r), c)] = fmap[c]

    def ranked(self, p: int) -> Sequence[int]:
        if p not in self.lists:
            self._block(self.position[p] // BLOCK * BLOCK)
        return self.lists[p]

    def complete(self, p: int) -> Sequence[int]:
        P = {k: v[p : p + 1] for k, v in self.P.items()}
        ok = rules.eligible(P, self.O, self.engine.as_of_ord)
        cols = np.flatnonzero(ok)
        if cols.size == 0:
            return []
        e, f = rules.totals(P, {k: v[cols] for k, v in self.O.items()})
        for c, score in zip(cols.tolist(), f.tolist(), strict=True):
            self.fscore[(p, c)] = score
        return self._sorted(cols, e, None)

    def funder_key(self, p: int, o: int) -> tuple[float, int]:
        score = self.fscore.get((p, o))
        if score is None:
            P = {k: v[p : p + 1] for k, v in self.P.items()}
            O = {k: v[o : o + 1] for k, v in self.O.items()}
            score = float(rules.totals(P, O)[1][0])
            self.fscore[(p, o)] = score
        return (-round(score, 12), int(self.project_rank[p]))

    def amount(self, p: int, o: int) -> int:
        return int(min(self.P["amount"][p], self.O["tmax"][o]))
