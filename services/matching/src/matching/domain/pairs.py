"""Eligible pairs and their scores, computed a side or a block at a time.

One project against every offer and one offer against every project first prune by the cheap
categorical rules, then run the numeric rules and the scores on the survivors only. Blocks of
projects are grouped by (city, sector, stage), so each group meets only the offers that cover
it, and are cut into chunks of bounded size (memory stays flat whatever the instance size)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from matching.domain import eligibility, offerkernels, offerscores, pairkernels, scoring
from matching.domain.columns import Arr, Cols

I64 = npt.NDArray[np.int64]
MAX_CELLS = 1 << 20  # project × offer cells per chunk


def take(cols: Cols, idx: Arr, names: Iterable[str] | None = None) -> Cols:
    """These rows of the columns (of the named columns only, if given)."""
    return {k: cols[k][idx] for k in (cols if names is None else names)}


def project_vs_offers(P1: Cols, O: Cols, as_of: int) -> tuple[I64, I64, I64]:
    """One project (columns of length 1) against all offers: (offer rows, e_q, f_q)."""
    cand = np.flatnonzero(eligibility.categorical(P1, O) & eligibility.live_offers(O, as_of))
    if not bool(P1["active"][0]) or cand.size == 0:
        return _empty()
    Oc = take(O, cand)
    ok = eligibility.numeric(P1, Oc, as_of)
    e_q, f_q = scoring.totals(P1, take(Oc, ok))
    return cand[ok], e_q, f_q


def offer_vs_projects(P: Cols, O1: Cols, as_of: int) -> tuple[I64, I64, I64]:
    """One offer (columns of length 1) against all projects: (project rows, e_q, f_q); the
    totals compiled, read in place (`offerscores`: the same bits as `scoring.totals`)."""
    rows = offer_rows(P, O1, as_of)
    if rows.size == 0:
        return _empty()
    e_q, f_q = offerscores.totals(P, rows, O1)
    return rows, e_q, f_q


def offer_rows(P: Cols, O1: Cols, as_of: int) -> I64:
    """The project rows eligible for one offer (columns of length 1), ascending: one compiled
    pass over the projects (`offerkernels`)."""
    if not bool(eligibility.live_offers(O1, as_of)[0]):
        return np.zeros(0, dtype=np.int64)
    return offerkernels.eligible_rows(P, O1, as_of)


def _empty() -> tuple[I64, I64, I64]:
    z = np.zeros(0, dtype=np.int64)
    return z, z, z


@dataclass
class Chunk:
    """Eligible pairs of `rows` (project rows) × `offers` (offer rows): pair i is
    (rows[ri[i]], offers[ci[i]]) with quantised scores e_q[i], f_q[i]."""

    rows: I64
    offers: I64
    ri: I64
    ci: I64
    e_q: I64
    f_q: I64


@dataclass
class OfferGroups:
    """The live offers' columns and, per (city, sector, stage) group of projects, the offers
    that cover it; kept between calls on the same offers (the allocation lengthens preference
    lists a few rows at a time, ~500 calls at 100,000 × 10,000: taking every offer column again
    per call and per group was a third of the lengthening)."""

    live: I64
    cols: Cols
    groups: dict[int, tuple[I64, Cols]] = field(default_factory=dict)

    @classmethod
    def of(cls, O: Cols, as_of: int) -> OfferGroups:
        live = np.flatnonzero(eligibility.live_offers(O, as_of))
        return cls(live, take(O, live))

    def covering(self, P: Cols, row: int, group: int) -> tuple[I64, Cols]:
        got = self.groups.get(group)
        if got is None:
            Ol = self.cols
            ok = (Ol["city_mask"] & P["city_bit"][row]) != 0
            ok &= (Ol["sector_mask"] & P["sector_bit"][row]) != 0
            ok &= (Ol["stage_mask"] & P["stage_bit"][row]) != 0
            cand = np.flatnonzero(ok)
            got = self.groups[group] = (cand, take(Ol, cand))
        return got

    def changed(self, O: Cols, as_of: int, rows: I64) -> OfferGroups | None:
        """The same after offer rows `rows` of `O` changed, updated in place (a capacity or
        terms change: ~35 ms less per change than building them again, and the groups kept);
        None when the live offers are not the same rows (built again then)."""
        live = np.flatnonzero(eligibility.live_offers(O, as_of))
        if not np.array_equal(live, self.live):
            return None
        at = np.searchsorted(live, rows)
        hit = at < live.size
        hit[hit] = live[at[hit]] == rows[hit]
        rows, at = rows[hit], at[hit]
        if rows.size == 0:
            return self
        for k, v in self.cols.items():
            v[at] = O[k][rows]
        for group, (cand, Oc) in list(self.groups.items()):
            city, sector, stage = group & 0xFFFF, group >> 16 & 0xFFFF, group >> 32
            now = (O["city_mask"][rows] & city) != 0
            now &= (O["sector_mask"][rows] & sector) != 0
            now &= (O["stage_mask"][rows] & stage) != 0
            i = np.minimum(np.searchsorted(cand, at), max(cand.size - 1, 0))
            was = (cand[i] == at) if cand.size else np.zeros(at.size, bool)
            if not np.array_equal(now, was):
                del self.groups[group]  # covered by other offers now: made again when asked
            elif now.any():
                for k, v in Oc.items():
                    v[i[now]] = O[k][rows[now]]
        return self


def blocks(
    P: Cols,
    prows: I64,
    O: Cols,
    as_of: int,
    max_cells: int = MAX_CELLS,
    offers: OfferGroups | None = None,
) -> Iterator[Chunk]:
    """All eligible pairs of the given project rows, in chunks. `offers`: `O`'s live offers
    and groups, kept by a caller that asks again with the same offers."""
    if prows.size == 0:
        return
    og = OfferGroups.of(O, as_of) if offers is None else offers
    live = og.live
    if live.size == 0:
        z = np.zeros(0, dtype=np.int64)
        yield Chunk(prows, live, z, z, z, z)
        return
    group = P["city_bit"][prows] | P["sector_bit"][prows] << 16 | P["stage_bit"][prows] << 32
    order = np.argsort(group, kind="stable")
    prows, group = prows[order], group[order]
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    ends = np.r_[starts[1:], prows.size]
    for s, t in zip(starts.tolist(), ends.tolist(), strict=True):
        cand, Oc = og.covering(P, int(prows[s]), int(group[s]))
        step = max(1, max_cells // max(cand.size, 1))
        for u in range(s, t, step):
            rows = prows[u : min(u + step, t)]
            if cand.size == 0:
                z = np.zeros(0, dtype=np.int64)
                yield Chunk(rows, live[cand], z, z, z, z)
                continue
            ri, ci = pairkernels.eligible_block(P, rows, Oc, as_of)
            e_q, f_q = scoring.totals(
                take(P, rows[ri], scoring.P_COLUMNS), take(Oc, ci, scoring.O_COLUMNS)
            )
            yield Chunk(rows, live[cand], ri, ci, e_q, f_q)


def top_per_row(
    n_rows: int, n_cols: int, ri: I64, ci: I64, key: I64, col_rank: I64, depth: int
) -> tuple[I64, I64, I64]:
    """Each row's best `depth` columns by key (high first), ties by column rank (low first):
    (columns n_rows×depth, padded with -1; their keys, -1 padded; eligible count per row).
    Works on the eligible pairs only, never on the dense block."""
    zero = np.zeros(ri.size if n_cols else 0, dtype=np.int64)
    cols, keys, _, count = pairkernels.top_per_row(
        n_rows, ri[: zero.size], ci[: zero.size], key[: zero.size], zero, col_rank, depth
    )
    return cols, keys, count
