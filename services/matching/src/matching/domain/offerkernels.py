"""One offer against every project, compiled (numba): the rows it is eligible for, in one pass
over the project columns that stops at a row's first failed rule (numpy evaluated the four
categorical rules on every row, then gathered every column of the survivors for the numeric
ones: a dozen temporaries of 100,000 cells, ~2 ms of every offer change), and the places of an
offer in the top lists of given rows (numpy compared every cell of both caches: 5 million cells,
~2 ms of every change or withdrawal of a listed offer).

A row is eligible here exactly when `eligibility.categorical`, `eligibility.numeric` and the
project's `active` flag say so (a comparison with NaN is False in both); the offer-only rules
(`eligibility.live_offers`) are the caller's. The unit tests compare both with the numpy
formulas."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

from matching.domain.columns import Cols, ProjectTable

I64 = npt.NDArray[np.int64]
_P = (  # the project columns the rules read, in `_rows`'s order
    "active", "city_bit", "sector_bit", "stage_bit", "instr_mask", "amount", "floor", "quals",
    "coll", "deadline", "revenue", "years", "debt", "max_cost", "max_dil",
)  # fmt: skip
_OI = ("city_mask", "sector_mask", "stage_mask", "instr_bit", "tmin", "tmax", "cap", "q_any",
       "q_all", "coll_req", "days0")  # fmt: skip
_OF = ("min_rev", "min_years", "max_debt", "rate", "eq_share")


@njit(cache=True, error_model="numpy")
def _rows(
    n: int,
    active: Any,
    city: Any,
    sector: Any,
    stage: Any,
    instr: Any,
    amount: Any,
    floor: Any,
    quals: Any,
    coll: Any,
    deadline: Any,
    revenue: Any,
    years: Any,
    debt: Any,
    max_cost: Any,
    max_dil: Any,
    oi: Any,
    of: Any,
    as_of: int,
    out: Any,
) -> int:  # pragma: no cover - compiled
    city_m, sector_m, stage_m, instr_b = oi[0], oi[1], oi[2], oi[3]
    tmin, tmax, cap, q_any, q_all, coll_req, due = (
        oi[4], oi[5], oi[6], oi[7], oi[8], oi[9], as_of + oi[10]
    )  # fmt: skip
    min_rev, min_years, max_debt, rate, eq_share = of[0], of[1], of[2], of[3], of[4]
    k = 0
    for i in range(n):
        if city[i] & city_m == 0 or sector[i] & sector_m == 0 or stage[i] & stage_m == 0:
            continue
        if instr[i] & instr_b == 0 or not active[i]:
            continue
        a = amount[i]
        if tmin > a or tmax < floor[i] or cap < min(a, tmax):
            continue
        q = quals[i]
        if (q_any != 0 and q_any & q == 0) or q_all & q != q_all:
            continue
        if coll_req != 0 and coll_req & coll[i] == 0:
            continue
        if deadline[i] < due:
            continue
        if not (np.isnan(min_rev) or revenue[i] >= min_rev):
            continue
        if not (np.isnan(min_years) or years[i] >= min_years):
            continue
        if not (np.isnan(max_debt) or debt[i] <= max_debt):
            continue
        if rate > max_cost[i] or eq_share > max_dil[i]:
            continue
        out[k] = i
        k += 1
    return k


def eligible_rows(P: Cols, O1: Cols, as_of: int) -> I64:
    """The project rows of `P` (all rows in use) eligible for the one offer `O1` (columns of
    length 1, live), ascending."""
    n = int(P["active"].size)
    oi = np.asarray([int(O1[c][0]) for c in _OI], dtype=np.int64)
    of = np.asarray([float(O1[c][0]) for c in _OF], dtype=np.float64)
    out = np.empty(n, np.int64)
    c = [P[name] for name in _P]
    k = _rows(
        n, c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[10], c[11], c[12],
        c[13], c[14], oi, of, as_of, out,
    )  # fmt: skip
    return out[:k].copy()


@njit(cache=True)
def _places(off: Any, rows: Any, offer: int, out_r: Any, out_c: Any) -> int:  # pragma: no cover
    k = 0
    for r in rows:
        for c in range(off.shape[1]):
            if off[r, c] == offer:
                out_r[k], out_c[k] = r, c
                k += 1
                break  # an offer is listed once per row
    return k


def places(off: Any, rows: I64, offer: int) -> tuple[I64, I64]:
    """(rows, positions) of `offer` in the top lists `off` of these rows (ascending)."""
    out_r, out_c = np.empty(rows.size, np.int64), np.empty(rows.size, np.int64)
    k = _places(off, rows, offer, out_r, out_c)
    return out_r[:k].copy(), out_c[:k].copy()


@njit(cache=True)
def _entering(
    key: Any, count: Any, exhaustive: Any, rows: Any, keys: Any, out: Any
) -> None:  # pragma: no cover - compiled
    for x in range(rows.size):
        r = rows[x]
        n = count[r]
        out[x] = exhaustive[r] or (n > 0 and keys[x] >= key[r, n - 1])


def entering(
    key: I64, count: I64, exhaustive: npt.NDArray[np.bool_], rows: I64, keys: I64
) -> npt.NDArray[np.bool_]:
    """Which of `rows` an offer with these keys could enter (`TopCache.candidates`, read in one
    compiled pass: numpy's gathers of 18,000 rows' last keys took ~0.5 ms, three times a
    change)."""
    out = np.empty(rows.size, np.bool_)
    _entering(key, count, exhaustive, rows, keys, out)
    return out


@njit(cache=True)
def drop(off: Any, key: Any, aux: Any, count: Any, rows: Any, at: Any) -> None:  # pragma: no cover
    """In place: entry `at[x]` of row `rows[x]` leaves, the entries after it move up one place
    (numpy gathered and scattered every listed row three times: most of a wide offer's change)."""
    d = off.shape[1]
    for x in range(rows.size):
        r = rows[x]
        for j in range(at[x], d - 1):
            off[r, j], key[r, j], aux[r, j] = off[r, j + 1], key[r, j + 1], aux[r, j + 1]
        off[r, d - 1], key[r, d - 1], aux[r, d - 1] = -1, -1, 0
        count[r] -= 1


@njit(cache=True)
def _insert(
    off: Any,
    key: Any,
    aux: Any,
    count: Any,
    exhaustive: Any,
    rows: Any,
    offer: int,
    keys: Any,
    pay: Any,
    rank: Any,
    out: Any,
) -> int:  # pragma: no cover - compiled
    d, me, k = off.shape[1], rank[offer], 0
    for x in range(rows.size):
        r = rows[x]
        v, cnt = keys[x], count[r]
        p = 0
        for j in range(d):  # every cell, as the numpy formula counted them
            if key[r, j] > v or (key[r, j] == v and j < cnt and rank[off[r, j]] < me):
                p += 1
        if not (p < cnt or (exhaustive[r] and cnt < d)):
            exhaustive[r] = False  # a full, exhaustive row: the offer falls just beyond it
            continue
        for j in range(d - 1, p, -1):
            off[r, j], key[r, j], aux[r, j] = off[r, j - 1], key[r, j - 1], aux[r, j - 1]
        off[r, p], key[r, p], aux[r, p] = offer, v, pay[x]
        if cnt == d:
            exhaustive[r] = False
        count[r] = min(cnt + 1, d)
        out[k] = r
        k += 1
    return k


def insert(
    off: Any,
    key: Any,
    aux: Any,
    count: Any,
    exhaustive: Any,
    rows: I64,
    offer: int,
    keys: I64,
    pay: I64,
    rank: I64,
) -> I64:
    """In place (`TopCache.insert`): `offer`, listed in none of `rows`, enters each row at its
    place by key (high first), ties by `rank` (each offer row's place in the order of the ids,
    low first) if the row's list reaches that far; the entries from there move down one place
    (the last one falls off). The rows it entered, in the order given. (numpy gathered the
    rows' keys and offers, compared the tied offers' ids and scattered: ~0.5 ms a list.)"""
    out = np.empty(rows.size, np.int64)
    k = _insert(off, key, aux, count, exhaustive, rows, offer, keys, pay, rank, out)
    return out[:k]


@njit(cache=True)
def _moves(
    rows: Any, bo: Any, bk: Any, ao: Any, ak: Any, out_r: Any, out_o: Any, count: Any
) -> None:  # pragma: no cover - compiled
    n, k = ao.shape
    for r in range(n):
        for i in range(k):  # entered (0) or re-scored (2), in the order of the top k after
            a = ao[r, i]
            if a < 0:
                continue
            was = -1
            for j in range(k):
                if bo[r, j] == a:
                    was = j
                    break
            kind = 0 if was < 0 else (2 if bk[r, was] != ak[r, i] else -1)
            if kind >= 0:
                out_r[kind, count[kind]], out_o[kind, count[kind]] = rows[r], a
                count[kind] += 1
        for j in range(k):  # left (1), in the order of the top k before
            b = bo[r, j]
            if b < 0:
                continue
            stays = False
            for i in range(k):
                if ao[r, i] == b:
                    stays = True
                    break
            if not stays:
                out_r[1, count[1]], out_o[1, count[1]] = rows[r], b
                count[1] += 1


def moves(rows: I64, bo: I64, bk: I64, ao: I64, ak: I64) -> tuple[tuple[list[int], list[int]], ...]:
    """How the top ks `bo` (offers, -1 padded; keys `bk`) of these project rows became `ao`
    (`ak`): the (project rows, offers) that entered, that left, and that stayed with another
    key, each row by row, in the order of the lists (after, before, after). One compiled pass
    (numpy compared every entry with every other of each row that moved: n × k × k)."""
    n = int(bo.size)
    out_r, out_o = np.empty((3, n), np.int64), np.empty((3, n), np.int64)
    count = np.zeros(3, np.int64)
    if n:
        _moves(rows, bo, bk, ao, ak, out_r, out_o, count)
    c = count.tolist()
    return tuple((out_r[x, : c[x]].tolist(), out_o[x, : c[x]].tolist()) for x in range(3))


def warm_up() -> None:
    """Compile (or load from numba's cache) the kernels on a tiny input."""
    P = {k: v[:1] for k, v in ProjectTable(1).cols.items()}
    O1 = {c: np.zeros(1, np.int64) for c in _OI} | {c: np.zeros(1) for c in _OF}
    eligible_rows(P, O1, 0)
    places(np.full((1, 1), -1, np.int32), np.zeros(1, np.int64), 0)
    one = np.ones(1, np.int64)
    entering(np.zeros((1, 1), np.int64), one, np.ones(1, np.bool_), one - 1, one)
    z32, z = np.full((1, 1), -1, np.int32), np.zeros((1, 1), np.int64)
    insert(z32, z, z.copy(), one - 1, np.ones(1, np.bool_), one - 1, 0, one, one, one - 1)
    drop(z32, z, z.copy(), one, one - 1, one - 1)
    moves(one - 1, z, z, z, z)
