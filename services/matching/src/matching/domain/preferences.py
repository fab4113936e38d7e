"""The allocation's preference lists: each project's eligible offers, best first by the
enterprise's view, with the funder's score of each pair, as runs of one pool of arrays (what the
compiled deferred acceptance reads, `kernels`).

`SnapshotLists` reads them from a market snapshot's copy of the engine's cache and lengthens
them on demand: a list that runs out is recomputed deeper (four times as deep, or complete), in
one block for the project that needs it and the projects about to need it; a lengthened list
read again from a new snapshot is lengthened again at once, as deep. Lengthening only
reveals more of the same order, so the allocation never depends on how deep a list happened to
be cached."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from matching.domain import pairkernels, pairs
from matching.domain.snapshot import MarketSnapshot
from matching.domain.topcache import I64, B

BATCH = 256  # projects lengthened together
DEEPEN = 8192  # lists read again as deep together: the work per group of offers is shared (one
# call for the ~2,000 rows of a capacity cut's lists: 1,081 group blocks in 256-row calls)
MIN_DEPTH = 128


class Pool:
    """Per project row a run of `pool_o`/`pool_f` (`start`, `length`) and whether the list is
    complete; a row never set has an empty, complete list. A list written again goes to the
    end of the pool; the pool is compacted when most of it is stale."""

    def __init__(self, rows: int = 0) -> None:
        self.pool_o, self.pool_f = np.zeros(1024, np.int64), np.zeros(1024, np.int64)
        self.used = 0
        self.start, self.length = np.zeros(rows, np.int64), np.zeros(rows, np.int64)
        self.complete: B = np.ones(rows, bool)

    def ensure(self, rows: int) -> None:
        n = self.start.size
        if rows > n:
            self.start = np.r_[self.start, np.zeros(rows - n, np.int64)]
            self.length = np.r_[self.length, np.zeros(rows - n, np.int64)]
            self.complete = np.r_[self.complete, np.ones(rows - n, bool)]

    def offers(self, p: int) -> I64:
        s = int(self.start[p])
        return self.pool_o[s : s + int(self.length[p])]

    def put(self, rows: I64, offs: I64, scores: I64, count: I64, complete: B) -> None:
        """These rows' lists: the first `count` of each row of `offs` / `scores`."""
        if rows.size == 0:
            return
        self.ensure(int(rows.max()) + 1)
        width = offs.shape[1]
        self._reserve(rows.size * width)
        base = self.used + np.arange(rows.size, dtype=np.int64) * width
        at = (base[:, None] + np.arange(width, dtype=np.int64)[None, :]).ravel()
        self.pool_o[at], self.pool_f[at] = offs.ravel(), scores.ravel()
        self.used += rows.size * width
        self.start[rows], self.length[rows] = base, np.minimum(count, width)
        self.complete[rows] = complete

    def gone(self, rows: Iterable[int]) -> None:
        ps = np.fromiter(rows, np.int64)
        ps = ps[ps < self.start.size]
        self.length[ps], self.complete[ps] = 0, True

    def cut(self, p: int, n: int) -> None:
        """p's list is only known this deep now."""
        self.length[p] = min(int(self.length[p]), n)
        self.complete[p] = False

    def _reserve(self, need: int) -> None:
        if self.used + need <= self.pool_o.size:
            return
        live = int(self.length.sum())
        if self.used > 2 * live + need:  # mostly stale: compact
            n = self.length
            rows = np.flatnonzero(n)
            new_start = np.zeros_like(self.start)
            new_start[rows] = np.cumsum(n[rows]) - n[rows]
            at = np.repeat(self.start[rows] - new_start[rows], n[rows]) + np.arange(live)
            size = max(2 * (live + need), 1024)
            po, pf = np.zeros(size, np.int64), np.zeros(size, np.int64)
            po[:live], pf[:live] = self.pool_o[at], self.pool_f[at]
            self.pool_o, self.pool_f, self.start, self.used = po, pf, new_start, live
            return
        size = max(2 * self.pool_o.size, self.used + need)
        self.pool_o = np.r_[self.pool_o, np.zeros(size - self.pool_o.size, np.int64)]
        self.pool_f = np.r_[self.pool_f, np.zeros(size - self.pool_f.size, np.int64)]

    def extend(self, p: int, also: I64) -> None:
        """Lengthen p's list (and, as a batch, those of `also`)."""
        raise NotImplementedError("these lists are complete")

    @classmethod
    def of(cls, lists: dict[int, list[int]], scores: dict[int, list[int]]) -> Pool:
        """Complete lists given directly (abstract instances)."""
        rows = max(lists, default=-1) + 1
        pool = cls(rows)
        width = max((len(v) for v in lists.values()), default=0) or 1
        offs, fs = np.zeros((rows, width), np.int64), np.zeros((rows, width), np.int64)
        count = np.zeros(rows, np.int64)
        for p, v in lists.items():
            offs[p, : len(v)], fs[p, : len(v)], count[p] = v, scores[p], len(v)
        pool.put(np.arange(rows, dtype=np.int64), offs, fs, count, np.ones(rows, bool))
        return pool


class SnapshotLists(Pool):
    def __init__(
        self,
        market: MarketSnapshot,
        rows: I64,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> None:
        super().__init__(len(market.project_ids))
        self.market = market
        self.progress = progress
        self.deep: set[int] = set()  # rows lengthened beyond the snapshot's cache
        self.extended = 0  # projects lengthened (for progress and benchmarks)
        self._offers: pairs.OfferGroups | None = None  # of `market`, made on the first extend
        self.take(market, rows)

    def take(self, market: MarketSnapshot, rows: I64, gone: Iterable[int] = ()) -> None:
        """Read on from `market`: these rows' lists again from its cache; `gone` rows out."""
        if market is not self.market and self._offers is not None:
            moved = _offers_changed(self.market, market)  # kept while the offers are the same
            self._offers = (
                None
                if moved is None
                else self._offers.changed(market.offers, market.as_of_ord, moved)
            )
        self.market, m = market, market
        self.ensure(len(m.project_ids))
        gone = list(gone)
        self.gone(gone)
        self.deep.difference_update(gone)
        rows = np.asarray(rows, dtype=np.int64)
        deep = np.fromiter((r in self.deep for r in rows.tolist()), bool, rows.size)
        was = np.maximum(self.length[rows[deep]], MIN_DEPTH)
        self.put(
            rows, m.pref_off[rows], m.pref_aux[rows], m.pref_count[rows], m.pref_complete[rows]
        )
        self.deep.difference_update(rows.tolist())
        # Lists that were lengthened are lengthened again at once, as deep as they were: the
        # project proposes from the top again and would run out of the cache's prefix where it
        # did before, one lengthening per group of offers each time (most of a capacity cut's)
        again = rows[deep] if deep.any() else rows[:0]
        keep = ~self.complete[again]
        self.deepen(again[keep], was[keep])

    def deepen(self, rows: I64, depths: I64) -> None:
        """These rows' lists `depths` deep (or complete), from the market: one lengthening
        per depth for all of them."""
        for depth in np.unique(depths).tolist():
            same = rows[depths == depth]
            for i in range(0, same.size, DEEPEN):
                self._lengthen(same[i : i + DEEPEN], int(depth))

    def extend(self, p: int, also: I64) -> None:
        more = also[(also != p) & ~self.complete[also]]
        rows = np.r_[np.int64(p), np.sort(more)[: BATCH - 1]].astype(np.int64)
        self._lengthen(rows, max(MIN_DEPTH, 4 * int(self.length[rows].max())))

    def _lengthen(self, rows: I64, depth: int) -> None:
        """These rows' lists `depth` deep (or complete)."""
        mk = self.market
        P, O, rank = mk.projects, mk.offers, mk.offer_rank
        if self._offers is None:
            self._offers = pairs.OfferGroups.of(O, mk.as_of_ord)
        for ch in pairs.blocks(P, rows, O, mk.as_of_ord, offers=self._offers):
            n, m = ch.rows.size, ch.offers.size
            # the funder's scores ride along as the payload (a dense n × m matrix of them, up
            # to a million cells per chunk, was zeroed and scattered for each chunk before)
            cols, _, scores, count = pairkernels.top_per_row(
                n, ch.ri, ch.ci, ch.e_q, ch.f_q, rank[ch.offers], depth
            )
            c = np.maximum(cols, 0)
            offs = ch.offers[c] if m else np.zeros_like(c)
            full = np.asarray(count, dtype=np.int64)
            self.put(ch.rows, offs, scores, np.minimum(full, depth), full <= depth)
        self.extended += rows.size
        self.deep.update(rows.tolist())
        if self.progress:
            self.progress("lengthening preference lists", self.extended, 0)


def _offers_changed(a: MarketSnapshot, b: MarketSnapshot) -> I64 | None:
    """The offer rows that differ between two snapshots; None if more than their values
    changed (rows came, or the day moved)."""
    if a.as_of_ord != b.as_of_ord or a.offers.keys() != b.offers.keys():
        return None
    if a.offers["active"].size != b.offers["active"].size:
        return None
    differ = np.zeros(b.offers["active"].size, dtype=bool)
    for k, v in b.offers.items():
        w = a.offers[k]
        differ |= (v != w) & ~((v != v) & (w != w)) if v.dtype.kind == "f" else v != w
    return np.flatnonzero(differ).astype(np.int64)
