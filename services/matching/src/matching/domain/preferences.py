"""The allocation's preference lists, read from a market snapshot's copy of the engine's cache
(each project's best offers by the enterprise's view, with the funder's score of each pair) and
lengthened on demand.

A list that runs out is recomputed deeper (four times as deep, or complete), in one block for
the project that needs it and the projects about to need it. Lengthening only reveals more of
the same order, so the allocation never depends on how deep a list happened to be cached."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from matching.domain import pairs
from matching.domain.snapshot import MarketSnapshot
from matching.domain.topcache import I64

BATCH = 256  # projects lengthened together
MIN_DEPTH = 128


class SnapshotLists:
    def __init__(
        self,
        market: MarketSnapshot,
        rows: I64,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> None:
        self.market = market
        self.progress = progress
        self.offers: dict[int, list[int]] = {}
        self.scores: dict[int, list[int]] = {}
        self.complete: dict[int, bool] = {}
        self.deep: set[int] = set()  # rows lengthened beyond the snapshot's cache
        self.extended = 0  # projects lengthened (for progress and benchmarks)
        self._offers: pairs.OfferGroups | None = None  # of `market`, made on the first extend
        self.take(market, rows)

    def take(self, market: MarketSnapshot, rows: I64, gone: Iterable[int] = ()) -> None:
        """Read on from `market`: these rows' lists again from its cache; `gone` rows out."""
        if market is not self.market:
            self._offers = None
        self.market, m = market, market
        for p in gone:
            self.offers.pop(p, None)
            self.scores.pop(p, None)
            self.complete.pop(p, None)
            self.deep.discard(p)
        count = m.pref_count[rows].tolist()
        offs, scores = m.pref_off[rows].tolist(), m.pref_aux[rows].tolist()
        ps = rows.tolist()
        self.offers.update((p, o[:n]) for p, o, n in zip(ps, offs, count, strict=True))
        self.scores.update((p, f[:n]) for p, f, n in zip(ps, scores, count, strict=True))
        self.complete.update(zip(ps, m.pref_complete[rows].tolist(), strict=True))
        self.deep.difference_update(ps)

    def extend(self, p: int, also: set[int]) -> None:
        rows = [p, *sorted(q for q in also if q != p and not self.complete[q])[: BATCH - 1]]
        depth = max(MIN_DEPTH, 4 * max(len(self.offers[q]) for q in rows))
        mk = self.market
        P, O, rank = mk.projects, mk.offers, mk.offer_rank
        if self._offers is None:
            self._offers = pairs.OfferGroups.of(O, mk.as_of_ord)
        prows = np.asarray(rows, dtype=np.int64)
        for ch in pairs.blocks(P, prows, O, mk.as_of_ord, offers=self._offers):
            n, m = ch.rows.size, ch.offers.size
            cols, _, count = pairs.top_per_row(n, m, ch.ri, ch.ci, ch.e_q, rank[ch.offers], depth)
            aux = np.zeros((n, max(m, 1)), dtype=np.int64)
            aux[ch.ri, ch.ci] = ch.f_q
            for i, row in enumerate(ch.rows.tolist()):
                k = int(min(count[i], depth))
                c = cols[i, :k]
                self.offers[row] = (ch.offers[c] if m else c).tolist()
                self.scores[row] = (aux[i, c] if m else c).tolist()
                self.complete[row] = bool(count[i] <= depth)
        self.extended += len(rows)
        self.deep.update(rows)
        if self.progress:
            self.progress("lengthening preference lists", self.extended, 0)
