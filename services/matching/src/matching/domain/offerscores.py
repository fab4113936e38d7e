"""One offer's totals against given project rows, compiled (numba): `scoring.totals` of those
pairs, read from the project columns in place (numpy gathered the ~20 columns the totals read
for every eligible row, then ran ~60 whole-array steps over them: ~2 ms of a wide offer's
change at 100,000 projects, most of it on rows the offer enters no list of).

The same formula step for step: the same + - × ÷ min max on the same operands in the same
order, IEEE 754 rounding each exactly as numpy does (no fast-math: nothing fused or
reassociated), NaN where numpy gives NaN (`_clip01`, `_least` keep numpy's NaN rules), so the
same bits; the quantised totals are what the caches and proposals compare. The unit tests
compare it with `scoring.totals` on random columns with unknowns."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

from matching.domain.columns import Cols
from matching.domain.model import ENTERPRISE_CRITERIA, FUNDER_CRITERIA
from matching.domain.scoring import (
    DEFAULT_DILUTION_REF,
    DEFAULT_RATE_REF_BP,
    NEUTRAL,
    RD_FULL_MARKS,
    quantise,
)

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
_PI = ("amount", "city_bit", "sector_bit", "instr_rank")  # project columns, int64
_PF: tuple[str, ...] = ("stage_idx", "n_instr", "revenue", "debt", "rd", "max_cost", "max_dil")
_PF += ("qual_strength", *(f"ew_{c}" for c in ENTERPRISE_CRITERIA))  # float64; weights in order
_OI = ("tmax", "instr", "coll_req", "prio_sector", "prio_city", "sector_explicit")
_OF: tuple[str, ...] = ("rate", "eq_share", "days", "stage_center", "stage_half", "mid", "edge")
_OF += tuple(f"fw_{c}" for c in FUNDER_CRITERIA)


@njit(cache=True, inline="always")
def _clip01(x: float) -> float:  # pragma: no cover - compiled
    """`np.clip(x, 0.0, 1.0)`: NaN stays NaN."""
    if x < 0.0:
        return 0.0
    if x > 1.0:
        return 1.0
    return x


@njit(cache=True, inline="always")
def _least(x: float, y: float) -> float:  # pragma: no cover - compiled
    """`np.minimum(x, y)`: NaN if either is."""
    if x != x or x < y:
        return x
    return y


@njit(cache=True, inline="always")
def _term(t: float) -> float:  # pragma: no cover - compiled
    return NEUTRAL if t != t else t


@njit(cache=True, error_model="numpy")
def _totals(
    rows: Any, which: Any, pi: Any, pf: Any, oi: Any, of: Any, e_out: Any, f_out: Any
) -> None:  # pragma: no cover - compiled
    """Pair x: project row `rows[x]` of the columns `pi`, `pf`; offer `which[x]` (`which[0]`
    for every pair when it has one entry) of the rows `oi`, `of`."""
    amount_c, city_c, sector_c, rank_c = pi
    stage_c, n_instr_c, revenue_c, debt_c, rd_c, cost_c, dil_c, qual_c = pf[:8]
    ew = pf[8:]
    one = which.size == 1
    for x in range(rows.size):
        i, j = rows[x], which[0] if one else which[x]
        tmax, instr, coll_req, prio_sector = oi[j, 0], oi[j, 1], oi[j, 2], oi[j, 3]
        prio_city, explicit = oi[j, 4], oi[j, 5]
        rate, share, days, center, half = of[j, 0], of[j, 1], of[j, 2], of[j, 3], of[j, 4]
        mid, edge, fw = of[j, 5], of[j, 6], of[j, 7:]
        speed = 30.0 / (30.0 + days)
        collateral = 1.0 if coll_req == 0 else 0.5
        amount = amount_c[i]
        a = float(min(amount, tmax))
        # the enterprise's view (`scoring.enterprise_terms`)
        if rate != rate:
            ref = dil_c[i]
            ref = DEFAULT_DILUTION_REF if ref != ref else ref
            cost = _clip01(1.0 - share / max(ref, 0.01))
        else:
            ref = cost_c[i]
            ref = DEFAULT_RATE_REF_BP if ref != ref else ref
            cost = _clip01(1.0 - rate / max(ref, 1.0))
        place = (rank_c[i] >> (4 * instr)) & 15
        instrument = 1.0 - (place - 1) / n_instr_c[i] if place > 0 else 0.0
        e = 0.0
        e = e + ew[0][i] * _term(cost)
        e = e + ew[1][i] * _term(speed)
        e = e + ew[2][i] * _term(a / amount)
        e = e + ew[3][i] * _term(instrument)
        e = e + ew[4][i] * _term(collateral)
        # the funder's view (`scoring.funder_terms`)
        if prio_sector & sector_c[i] != 0:
            sector = 1.0
        elif explicit:
            sector = 0.75
        else:
            sector = 0.4 if prio_sector != 0 else 0.5
        if center != center:
            stage = 0.5
        else:
            stage = 1.0 - 0.5 * _least(abs(stage_c[i] - center) / half, 1.0)
        city = 0.5 if prio_city == 0 else (1.0 if prio_city & city_c[i] != 0 else 0.3)
        ratio = revenue_c[i] / a
        p0, p1 = ratio / (1.0 + ratio), 1.0 - debt_c[i]
        p2 = _least(rd_c[i] / RD_FULL_MARKS, 1.0)
        known = (1.0 if p0 == p0 else 0.0) + (1.0 if p1 == p1 else 0.0)
        known = known + (1.0 if p2 == p2 else 0.0)
        summed = 0.0 + (0.0 if p0 != p0 else p0)  # Python's `sum` starts from 0
        summed = summed + (0.0 if p1 != p1 else p1)
        summed = summed + (0.0 if p2 != p2 else p2)
        financials = summed / max(known, 1.0) if known > 0 else np.nan
        closeness = _least(a / mid, mid / a)
        ticket = _clip01((closeness - edge) / (1.0 - edge)) if edge < 1.0 else 1.0
        f = 0.0
        f = f + fw[0] * _term(sector)
        f = f + fw[1] * _term(stage)
        f = f + fw[2] * _term(city)
        f = f + fw[3] * _term(qual_c[i])
        f = f + fw[4] * _term(financials)
        f = f + fw[5] * _term(ticket)
        e_out[x], f_out[x] = e, f


def totals(P: Cols, rows: I64, O1: Cols) -> tuple[I64, I64]:
    """`scoring.totals(take(P, rows), O1)` for the one offer `O1` (columns of length 1):
    (enterprise view, funder view), quantised, aligned with `rows`."""
    return pair_totals(P, rows, O1, np.zeros(1, np.int64))


def pair_totals(P: Cols, rows: I64, O: Cols, orows: I64) -> tuple[I64, I64]:
    """`scoring.totals(take(P, rows), take(O, orows))` of the pairs (rows[x], orows[x]), or of
    every row with offer orows[0] when `orows` has one entry."""
    e, f = weighted(P, rows, O, orows)
    return quantise(e), quantise(f)


def weighted(P: Cols, rows: I64, O: Cols, orows: I64) -> tuple[F64, F64]:
    """Both views' totals before `quantise` (`scoring.total` of each side's terms)."""
    n = int(rows.size)
    e, f = np.empty(n), np.empty(n)
    if n == 0:
        return e, f
    uo, which = np.unique(orows, return_inverse=True)
    oi = np.stack([O[c][uo].astype(np.int64) for c in _OI], axis=1)
    of = np.stack([O[c][uo].astype(np.float64) for c in _OF], axis=1)
    pi = tuple(P[c] for c in _PI)
    pf = tuple(P[c] for c in _PF)
    _totals(rows, which.astype(np.int64).reshape(-1), pi, pf, oi, of, e, f)
    return e, f


def warm_up() -> None:
    """Compile (or load from numba's cache) the kernel on a tiny input."""
    P = {c: np.zeros(1, np.int64) for c in _PI} | {c: np.ones(1) for c in _PF}
    O1 = {c: np.zeros(1, np.int64) for c in _OI} | {c: np.ones(1) for c in _OF}
    totals(P, np.zeros(1, np.int64), O1)
