"""Offers' applicants read back from the proposals' linked lists, the blocking test among
them, and the lists' compaction (layout: `kernels`)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from matching.domain.kernels.primitives import KEY_BITS, _keeps, _upto


@njit(cache=True, error_model="numpy")
def applicants(
    o: int,
    ptr: Any,
    assign: Any,
    start: Any,
    length: Any,
    pool_o: Any,
    e_p: Any,
    e_j: Any,
    e_next: Any,
    e_head: Any,
    stamp: Any,
) -> Any:
    """o's applicants that prefer it to what they hold: (projects, places), each once."""
    n = 0
    e = e_head[o]
    while e >= 0:
        n += 1
        e = e_next[e]
    ps, js = np.empty(n, np.int64), np.empty(n, np.int64)
    n = 0
    e = e_head[o]
    while e >= 0:
        p, j = e_p[e], e_j[e]
        e = e_next[e]
        if stamp[p] == o:
            continue
        stamp[p] = o
        if j < _upto(p, ptr, assign) and j < length[p] and pool_o[start[p] + j] == o:
            ps[n], js[n] = p, j
            n += 1
    e = e_head[o]
    while e >= 0:
        stamp[e_p[e]] = -1
        e = e_next[e]
    return ps[:n], js[:n]


@njit(cache=True, error_model="numpy")
def among(
    projects: Any,
    offers: Any,
    gp: Any,
    go: Any,
    gj: Any,
    ptr: Any,
    assign: Any,
    start: Any,
    length: Any,
    pool_o: Any,
    pool_f: Any,
    amount: Any,
    tmax: Any,
    rank: Any,
    cap: Any,
    deals: Any,
    hstart: Any,
    hn: Any,
    hk: Any,
    ha: Any,
    e_p: Any,
    e_j: Any,
    e_a: Any,
    e_f: Any,
    e_next: Any,
    e_head: Any,
) -> Any:
    """The blocking pairs among all preferred offers of `projects`, all applicants of `offers`
    (each once) and the given pairs (gp, go, gj): arrays (p, o, place of o in p's list).

    What an offer holds is a greedy choice, so choosing again from it plus p keeps all of it up
    to p's place in the offer's order: p is kept exactly when the capacity and the deals left
    after the holdings the offer prefers to p still admit p.

    An offer's applicants are mostly projects it rejected and still would: each entry carries
    the amount and the funder's score it was made with (`_propose`), which are the project's
    now while the entry holds (a project whose amount or list changed proposes again, making
    a newer entry), so an entry that cannot fit even ahead of every holding with its score is
    passed over from the entry alone, without reading the project (~12 random reads each)."""
    seen = np.zeros(ptr.size, np.bool_)
    cap_q = 64 + gp.size
    qp, qo, qj = np.empty(cap_q, np.int64), np.empty(cap_q, np.int64), np.empty(cap_q, np.int64)
    n = 0
    for x in range(gp.size):
        qp[n], qo[n], qj[n] = gp[x], go[x], gj[x]
        n += 1
    for p in projects:
        u = _upto(p, ptr, assign)
        if u <= 0:
            continue
        seen[p] = True
        if n + u > qp.size:
            grow = max(2 * qp.size, n + u)
            qp, qo, qj = _grow3(qp, qo, qj, n, grow)
        for j in range(u):
            qp[n], qo[n], qj[n] = p, pool_o[start[p] + j], j
            n += 1
    stamp = np.full(ptr.size, -1, np.int64)
    for o in offers:
        s, c = hstart[o], hn[o]
        used = np.empty(c + 1, np.int64)  # the capacity the first x holdings use
        used[0] = 0
        for x in range(c):
            used[x + 1] = used[x] + ha[s + x]
        e = e_head[o]
        while e >= 0:
            p, j, f, a = e_p[e], e_j[e], e_f[e], min(e_a[e], tmax[o])
            e = e_next[e]
            if not _may_keep(f, a, cap[o], deals[o], hk[s : s + c], used):
                continue  # not stamped: p's older entries say the same or do not hold
            if seen[p] or stamp[p] == o:
                continue
            stamp[p] = o
            if j < _upto(p, ptr, assign) and j < length[p] and pool_o[start[p] + j] == o:
                if n == qp.size:
                    qp, qo, qj = _grow3(qp, qo, qj, n, 2 * qp.size)
                qp[n], qo[n], qj[n] = p, o, j
                n += 1
    bp, bo, bj = np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.int64)
    m = 0
    for x in range(n):
        p, o, j = qp[x], qo[x], qj[x]
        if j < length[p] and _keeps(
            p, o, j, start, pool_f, amount, tmax, rank, cap, deals, hstart, hn, hk, ha
        ):
            bp[m], bo[m], bj[m] = p, o, j
            m += 1
    return bp[:m], bo[:m], bj[:m]


@njit(cache=True, error_model="numpy")
def _may_keep(f: int, a: int, cap: int, deals: int, keys: Any, used: Any) -> Any:
    """Could an offer keep an applicant of amount `a` whose score is `f`, whatever its id's
    rank? Only the holdings with a better score go before it (`keys`: the offer's holdings'
    keys, in order; `used`: their running sum of amounts)."""
    k = ((1 << KEY_BITS) - f) << KEY_BITS  # the lowest key of that score
    x = np.searchsorted(keys, k)  # the holdings that come before any such key
    return a <= cap - used[x] and deals - x > 0


@njit(cache=True, error_model="numpy")
def _grow3(a: Any, b: Any, c: Any, n: int, size: int) -> Any:
    a2, b2, c2 = np.empty(size, np.int64), np.empty(size, np.int64), np.empty(size, np.int64)
    a2[:n], b2[:n], c2[:n] = a[:n], b[:n], c[:n]
    return a2, b2, c2


@njit(cache=True, error_model="numpy")
def compact_applicants(
    n_offers: int,
    ptr: Any,
    start: Any,
    length: Any,
    pool_o: Any,
    e_p: Any,
    e_j: Any,
    e_a: Any,
    e_f: Any,
    e_next: Any,
    e_head: Any,
) -> Any:
    """The applicants' lists without the entries that no longer hold (the project proposed
    from before that place again, or its list changed) and without repeats: new arrays with
    room for as many again. Returns (e_p, e_j, e_a, e_f, e_next, e_head, used)."""
    stamp = np.full(ptr.size, -1, np.int64)
    keep = 0
    for o in range(n_offers):
        e = e_head[o]
        while e >= 0:
            p, j = e_p[e], e_j[e]
            if stamp[p] != o:  # the newest entry of p decides
                stamp[p] = o
                keep += j < ptr[p] and j < length[p] and pool_o[start[p] + j] == o
            e = e_next[e]
    size = max(1024, 2 * keep, e_p.size if keep < e_p.size // 2 else 2 * e_p.size)
    np_, nj, nn = np.empty(size, np.int64), np.empty(size, np.int64), np.empty(size, np.int64)
    na, nf = np.empty(size, np.int64), np.empty(size, np.int64)
    nh = np.full(e_head.size, -1, np.int64)
    stamp[:] = -1
    used = 0
    for o in range(n_offers):
        e, last = e_head[o], -1
        while e >= 0:  # newest first, kept in that order
            p, j, x = e_p[e], e_j[e], e
            e = e_next[e]
            if stamp[p] == o:
                continue
            stamp[p] = o
            if j < ptr[p] and j < length[p] and pool_o[start[p] + j] == o:
                np_[used], nj[used], nn[used] = p, j, -1
                na[used], nf[used] = e_a[x], e_f[x]
                if last < 0:
                    nh[o] = used
                else:
                    nn[last] = used
                last = used
                used += 1
    return np_, nj, na, nf, nn, nh, used
