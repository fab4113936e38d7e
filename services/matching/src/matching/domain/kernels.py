"""Compiled kernels of deferred acceptance and of the blocking-pair test (numba, over arrays).

The state they work on (`acceptance.py` owns it): per project `ptr` (how far down its list it
proposed) and `assign` (the offer it holds, -1 for none); per offer `room` and `slots` (the
capacity and deals left) and its holdings, a sorted run of (key, project, amount, place) in the
`h*` arrays at `hstart[o]` (`hn[o]` of `hcap[o]` used; a full run moves to the end of the arrays
with twice the room); the preference lists as runs of a pool (`start`, `length`, `complete`,
`pool_o`, `pool_f`: offers and the funder's scores); every proposal as an entry of a linked list
per offer (`e_*`, newest first from `e_head[o]`), read back as the offer's applicants.

A kernel that runs out of room (the holdings' or the applicants' arrays, or a preference list
that must be lengthened) stops before it changes anything and says why (`status`, `what`); the
caller grows the arrays or lengthens the list and calls it again with the queue left. The
semantics are exactly those of the Python loop they replace (documented in `acceptance.py`)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

KEY_BITS = 31  # a key: (2^31 - the funder's score) << 31 | the rank of the project's id
DONE, LIMIT, EXTEND, HELD_FULL, APPS_FULL = 0, 1, 2, 3, 4


@njit(cache=True, error_model="numpy")
def _push(buf: Any, head: int, tail: int, x: int) -> Any:
    if tail == buf.size:
        n = tail - head
        grown = np.empty(buf.size if head > buf.size // 2 else buf.size * 2, np.int64)
        for y in range(n):
            grown[y] = buf[head + y]
        buf, head, tail = grown, 0, n
    buf[tail] = x
    return buf, head, tail + 1


@njit(cache=True, error_model="numpy")
def _rest(buf: Any, head: int, tail: int) -> Any:
    out = np.empty(tail - head, np.int64)
    for x in range(tail - head):
        out[x] = buf[head + x]
    return out


@njit(cache=True, error_model="numpy")
def _room_for(
    o: int, hstart: Any, hcap: Any, hn: Any, hk: Any, hp: Any, ha: Any, hj: Any, hused: Any
) -> bool:
    """One more holding fits in o's run (moved to the end, twice as long, if need be)."""
    if hn[o] < hcap[o]:
        return True
    want = max(4, 2 * hcap[o])
    if hused[0] + want > hk.size:
        return False
    s, n, to = hstart[o], hn[o], hused[0]
    for x in range(n):
        hk[to + x], hp[to + x], ha[to + x], hj[to + x] = hk[s + x], hp[s + x], ha[s + x], hj[s + x]
    hstart[o], hcap[o] = to, want
    hused[0] += want
    hused[1] += 1  # the layout changed
    return True


@njit(cache=True, error_model="numpy")
def _propose(
    p: int,
    o: int,
    i: int,
    f: int,
    buf: Any,
    head: int,
    tail: int,
    assign: Any,
    amount: Any,
    tmax: Any,
    rank: Any,
    room: Any,
    slots: Any,
    hstart: Any,
    hn: Any,
    hk: Any,
    hp: Any,
    ha: Any,
    hj: Any,
    e_p: Any,
    e_j: Any,
    e_next: Any,
    e_head: Any,
    e_used: Any,
    dirty_p: Any,
    dirty_o: Any,
    touched_o: Any,
) -> Any:
    """p proposes to o (place i of its list, the funder's score f); o chooses from what it
    holds plus p; the projects it rejects go to the queue. Room was checked by the caller."""
    e = e_used[0]
    e_p[e], e_j[e], e_next[e] = p, i, e_head[o]
    e_head[o] = e
    e_used[0] = e + 1
    dirty_p[p] = True
    a = min(amount[p], tmax[o])
    k = (((1 << KEY_BITS) - f) << KEY_BITS) | rank[p]
    s, n = hstart[o], hn[o]
    if a <= room[o] and slots[o] > 0:  # p fits in what is left: everyone is kept
        at = s + n
        while at > s and hk[at - 1] > k:
            hk[at], hp[at], ha[at], hj[at] = hk[at - 1], hp[at - 1], ha[at - 1], hj[at - 1]
            at -= 1
        hk[at], hp[at], ha[at], hj[at] = k, p, a, i
        hn[o] = n + 1
        touched_o[o] = True
        room[o] -= a
        slots[o] -= 1
        assign[p] = o
        return buf, head, tail
    if n == 0 or k > hk[s + n - 1]:  # p comes last and does not fit
        return _push(buf, head, tail, p)
    lo, hi = s, s + n  # the first holding after p in o's order
    while lo < hi:
        mid = (lo + hi) // 2
        if hk[mid] < k:
            lo = mid + 1
        else:
            hi = mid
    left, free = room[o], slots[o]
    for x in range(lo, s + n):
        left += ha[x]
        free += 1
    m = s + n - lo + 1
    ck, cp = np.empty(m, np.int64), np.empty(m, np.int64)
    ca, cj = np.empty(m, np.int64), np.empty(m, np.int64)
    ck[0], cp[0], ca[0], cj[0] = k, p, a, i
    for x in range(1, m):
        h = lo + x - 1
        ck[x], cp[x], ca[x], cj[x] = hk[h], hp[h], ha[h], hj[h]
    at = lo
    for x in range(m):
        if ca[x] <= left and free > 0:
            hk[at], hp[at], ha[at], hj[at] = ck[x], cp[x], ca[x], cj[x]
            at += 1
            left -= ca[x]
            free -= 1
            assign[cp[x]] = o
        else:
            q = cp[x]
            if assign[q] == o:
                assign[q] = -1
                dirty_p[q] = True
                dirty_o[o] = True
            buf, head, tail = _push(buf, head, tail, q)
    hn[o] = at - s
    touched_o[o] = True
    room[o], slots[o] = left, free
    return buf, head, tail


@njit(cache=True, error_model="numpy")
def _leave(
    p: int,
    assign: Any,
    room: Any,
    slots: Any,
    hstart: Any,
    hn: Any,
    hk: Any,
    hp: Any,
    ha: Any,
    hj: Any,
    dirty_p: Any,
    dirty_o: Any,
    touched_o: Any,
) -> None:
    """p lets go of what it holds."""
    dirty_p[p] = True
    o = assign[p]
    if o < 0:
        return
    assign[p] = -1
    dirty_o[o] = touched_o[o] = True
    s, n = hstart[o], hn[o]
    at = s
    while hp[at] != p:
        at += 1
    room[o] += ha[at]
    slots[o] += 1
    for x in range(at, s + n - 1):
        hk[x], hp[x], ha[x], hj[x] = hk[x + 1], hp[x + 1], ha[x + 1], hj[x + 1]
    hn[o] = n - 1


@njit(cache=True, error_model="numpy")
def _keeps(
    p: int,
    o: int,
    j: int,
    start: Any,
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
) -> Any:
    """Would o, choosing from what it holds plus p (o at place j of p's list), keep p? What o
    holds is a greedy choice, so it keeps all of it up to p's place in its order: p is kept
    exactly when the capacity and deals left after the holdings o prefers to p admit p."""
    k = (((1 << KEY_BITS) - pool_f[start[p] + j]) << KEY_BITS) | rank[p]
    left, count, s = cap[o], 0, hstart[o]
    for h in range(s, s + hn[o]):
        if hk[h] >= k:
            break
        left -= ha[h]
        count += 1
    return min(amount[p], tmax[o]) <= left and deals[o] - count > 0


@njit(cache=True, error_model="numpy")
def run(
    queue: Any,
    moves: Any,
    check: bool,
    limit: int,
    made: int,
    ptr: Any,
    assign: Any,
    start: Any,
    length: Any,
    complete: Any,
    pool_o: Any,
    pool_f: Any,
    amount: Any,
    tmax: Any,
    rank: Any,
    cap: Any,
    deals: Any,
    room: Any,
    slots: Any,
    hstart: Any,
    hcap: Any,
    hn: Any,
    hk: Any,
    hp: Any,
    ha: Any,
    hj: Any,
    hused: Any,
    e_p: Any,
    e_j: Any,
    e_next: Any,
    e_head: Any,
    e_used: Any,
    dirty_p: Any,
    dirty_o: Any,
    touched_o: Any,
    watch: Any,
) -> Any:
    """First the `moves` (rows p, o, j), in order: p leaves what it holds and proposes to o
    (place j of its list), if `check` is false or the pair still blocks; then proposals from
    the queue until it is empty (DONE), or `made` passes `limit` (LIMIT, if limit ≥ 0), or the
    arrays need the caller (EXTEND p's list, HELD_FULL, APPS_FULL: nothing of that step was
    done). Returns (status, what, the queue left, proposals made, moves gone through, moved)."""
    n = queue.size
    buf = np.empty(max(16, 2 * n), np.int64)
    buf[:n] = queue
    head, tail, k, moved = 0, n, 0, 0
    while True:
        if k < moves.shape[0]:
            p, o, i = moves[k, 0], moves[k, 1], moves[k, 2]
            if check and not (
                _upto(p, ptr, assign) > i
                and _keeps(
                    p, o, i, start, pool_f, amount, tmax, rank, cap, deals, hstart, hn, hk, ha
                )
            ):
                k += 1
                continue
            if not _room_for(o, hstart, hcap, hn, hk, hp, ha, hj, hused):
                return HELD_FULL, o, _rest(buf, head, tail), made, k, moved
            if e_used[0] >= e_p.size:
                return APPS_FULL, o, _rest(buf, head, tail), made, k, moved
            _leave(p, assign, room, slots, hstart, hn, hk, hp, ha, hj, dirty_p, dirty_o, touched_o)
            ptr[p] = i + 1
            k += 1
            moved += 1
        else:
            if head >= tail:
                break
            if limit >= 0 and made > limit:
                return LIMIT, -1, _rest(buf, head, tail), made, k, moved
            p = buf[head]
            if assign[p] >= 0:  # moved by a repair while it waited
                head += 1
                continue
            i, size = ptr[p], length[p]
            if i >= size:
                if complete[p]:
                    head += 1
                    continue
                return EXTEND, p, _rest(buf, head, tail), made, k, moved
            o = pool_o[start[p] + i]
            if not _room_for(o, hstart, hcap, hn, hk, hp, ha, hj, hused):
                return HELD_FULL, o, _rest(buf, head, tail), made, k, moved
            if e_used[0] >= e_p.size:
                return APPS_FULL, o, _rest(buf, head, tail), made, k, moved
            head += 1
            ptr[p] = i + 1
            if i + 2 >= size and not complete[p]:
                watch[p] = True  # lengthened together with the next one that runs out
        made += 1
        buf, head, tail = _propose(
            p,
            o,
            i,
            pool_f[start[p] + i],
            buf,
            head,
            tail,
            assign,
            amount,
            tmax,
            rank,
            room,
            slots,
            hstart,
            hn,
            hk,
            hp,
            ha,
            hj,
            e_p,
            e_j,
            e_next,
            e_head,
            e_used,
            dirty_p,
            dirty_o,
            touched_o,
        )
    return DONE, -1, _rest(buf, head, tail), made, k, moved


@njit(cache=True, error_model="numpy")
def _upto(p: int, ptr: Any, assign: Any) -> Any:
    return ptr[p] - (1 if assign[p] >= 0 else 0)


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
    e_next: Any,
    e_head: Any,
) -> Any:
    """The blocking pairs among all preferred offers of `projects`, all applicants of `offers`
    (each once) and the given pairs (gp, go, gj): arrays (p, o, place of o in p's list).

    What an offer holds is a greedy choice, so choosing again from it plus p keeps all of it up
    to p's place in the offer's order: p is kept exactly when the capacity and the deals left
    after the holdings the offer prefers to p still admit p."""
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
        e = e_head[o]
        while e >= 0:
            p, j = e_p[e], e_j[e]
            e = e_next[e]
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
    e_next: Any,
    e_head: Any,
) -> Any:
    """The applicants' lists without the entries that no longer hold (the project proposed
    from before that place again, or its list changed) and without repeats: new arrays with
    room for as many again. Returns (e_p, e_j, e_next, e_head, used)."""
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
    nh = np.full(e_head.size, -1, np.int64)
    stamp[:] = -1
    used = 0
    for o in range(n_offers):
        e, last = e_head[o], -1
        while e >= 0:  # newest first, kept in that order
            p, j = e_p[e], e_j[e]
            e = e_next[e]
            if stamp[p] == o:
                continue
            stamp[p] = o
            if j < ptr[p] and j < length[p] and pool_o[start[p] + j] == o:
                np_[used], nj[used], nn[used] = p, j, -1
                if last < 0:
                    nh[o] = used
                else:
                    nn[last] = used
                last = used
                used += 1
    return np_, nj, nn, nh, used
