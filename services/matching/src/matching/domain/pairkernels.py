"""The batch load's two loops that numpy cannot do without dense temporaries, compiled (numba):
the numeric rules of a block of projects × the offers covering their group, stopping at a
pair's first failed rule (numpy evaluated every rule on every cell of the block, a dozen
temporaries of a million cells each), and each row's best entries by key kept in a small sorted
buffer per row (numpy sorted every eligible pair of the block).

Only comparisons and integer arithmetic: a pair is eligible here exactly when
`eligibility.numeric` and the instrument rule say so (a comparison with NaN is False in both),
and the selection orders by the same composite key as `pairs.top_per_row` did (key high first,
then column rank low first); the unit tests compare both with the numpy formulas."""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from matching.domain.columns import INSTRUMENTS, Arr, Cols

RANK_BITS = 31  # composite keys: key << 31 | (2**31 - 1 - column rank)
_PI = ("instr_mask", "amount", "floor", "quals", "coll", "deadline")
_PF = ("revenue", "years", "debt", "max_cost", "max_dil")
_OI = ("instr_bit", "tmin", "tmax", "cap", "q_any", "q_all", "coll_req", "days0")
_OF = ("min_rev", "min_years", "max_debt", "rate", "eq_share")


@njit(cache=True, error_model="numpy")
def _eligible_block(
    pi: Any,
    pf: Any,
    oi: Any,
    of: Any,
    starts: Any,
    perm: Any,
    as_of: int,
    out_r: Any,
    out_c: Any,
) -> int:  # pragma: no cover - compiled
    """pi: rows × int columns `_PI`; pf: rows × `_PF`; oi, of: offers × `_OI`, `_OF`, sorted
    by (instrument, ticket minimum), instrument t's offers at [starts[t], starts[t + 1]);
    perm: their columns before sorting."""
    n, k = pi.shape[0], 0
    for i in range(n):
        instr, amount, floor, quals, coll, deadline = (
            pi[i, 0], pi[i, 1], pi[i, 2], pi[i, 3], pi[i, 4], pi[i, 5]
        )  # fmt: skip
        revenue, years, debt, max_cost, max_dil = pf[i, 0], pf[i, 1], pf[i, 2], pf[i, 3], pf[i, 4]
        first = k
        for t in range(starts.size - 1):
            if instr >> t & 1 == 0:
                continue
            for j in range(starts[t], starts[t + 1]):
                if oi[j, 1] > amount:
                    break  # the ticket minimums rise from here on
                if oi[j, 2] < floor or oi[j, 3] < min(amount, oi[j, 2]):
                    continue
                q_any, q_all, coll_req = oi[j, 4], oi[j, 5], oi[j, 6]
                if (q_any != 0 and q_any & quals == 0) or q_all & quals != q_all:
                    continue
                if coll_req != 0 and coll_req & coll == 0:
                    continue
                if deadline < as_of + oi[j, 7]:
                    continue
                x = of[j, 0]
                if not (np.isnan(x) or revenue >= x):
                    continue
                x = of[j, 1]
                if not (np.isnan(x) or years >= x):
                    continue
                x = of[j, 2]
                if not (np.isnan(x) or debt <= x):
                    continue
                if of[j, 3] > max_cost or of[j, 4] > max_dil:
                    continue
                out_r[k], out_c[k] = i, perm[j]
                k += 1
        out_c[first:k].sort()  # each row's pairs in column order, as a dense block gives them
    return k


def eligible_block(P: Cols, rows: Arr, Oc: Cols, as_of: int) -> tuple[Arr, Arr]:
    """The eligible pairs (row index into `rows`, column into `Oc`), row-major, of project rows
    `rows` of `P` against offers `Oc` already live and covering their city, sector and stage."""
    n, m = int(rows.size), int(Oc["tmin"].size)
    perm = np.lexsort((Oc["tmin"], Oc["instr"]))
    starts = np.searchsorted(Oc["instr"][perm], np.arange(len(INSTRUMENTS) + 1))
    pi, pf = (np.stack([P[c][rows] for c in names], axis=1) for names in (_PI, _PF))
    oi, of = (np.stack([Oc[c][perm] for c in names], axis=1) for names in (_OI, _OF))
    out_r, out_c = np.empty(n * m, np.int64), np.empty(n * m, np.int64)
    k = _eligible_block(pi, pf, oi, of, starts, perm, as_of, out_r, out_c)
    return out_r[:k].copy(), out_c[:k].copy()


@njit(cache=True, error_model="numpy")
def _top(
    ri: Any,
    ci: Any,
    key: Any,
    pay: Any,
    col_rank: Any,
    cols: Any,
    keys: Any,
    pays: Any,
    comp: Any,
    count: Any,
) -> None:  # pragma: no cover - compiled
    depth, low = cols.shape[1], (1 << RANK_BITS) - 1
    for x in range(ri.size):
        r, c = ri[x], ci[x]
        v = key[x] << RANK_BITS | (low - col_rank[c])
        n = count[r]
        count[r] = n + 1
        if n >= depth:
            if v <= comp[r, depth - 1]:
                continue
            n = depth - 1
        while n > 0 and comp[r, n - 1] < v:  # shift the smaller entries down one place
            comp[r, n], cols[r, n], keys[r, n], pays[r, n] = (
                comp[r, n - 1], cols[r, n - 1], keys[r, n - 1], pays[r, n - 1]
            )  # fmt: skip
            n -= 1
        comp[r, n], cols[r, n], keys[r, n], pays[r, n] = v, c, key[x], pay[x]


def top_per_row(
    n_rows: int, ri: Arr, ci: Arr, key: Arr, pay: Arr, col_rank: Arr, depth: int
) -> tuple[Arr, Arr, Arr, Arr]:
    """Each row's best `depth` pairs by key (high first), ties by column rank (low first), in
    one pass over the pairs (any order): (columns n_rows×depth, -1 padded; their keys, -1
    padded; their payloads, 0 padded; eligible count per row)."""
    cols = np.full((n_rows, depth), -1, dtype=np.int64)
    keys = np.full((n_rows, depth), -1, dtype=np.int64)
    pays = np.zeros((n_rows, depth), dtype=np.int64)
    count = np.zeros(n_rows, dtype=np.int64)
    if ri.size:
        comp = np.empty((n_rows, depth), dtype=np.int64)
        _top(ri, ci, key, pay, col_rank, cols, keys, pays, comp, count)
    return cols, keys, pays, count


def warm_up() -> None:
    """Compile (or load from numba's cache) the load's kernels on a tiny input (else the first
    load pays it: ~0.3 s from the cache)."""
    z = np.zeros(1, np.int64)
    _eligible_block(
        np.zeros((1, 6), np.int64), np.zeros((1, 5)), np.zeros((1, 8), np.int64),
        np.zeros((1, 5)), np.zeros(2, np.int64), z, 0, z.copy(), z.copy(),
    )  # fmt: skip
    top_per_row(1, z, z, z, z, z, 1)
