"""The holdings' and the queue's primitives the other kernels share (layout: `kernels`)."""

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
    e_a: Any,
    e_f: Any,
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
    e_a[e], e_f[e] = amount[p], f  # for `among`'s fit test without reading the project
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
def _upto(p: int, ptr: Any, assign: Any) -> Any:
    return ptr[p] - (1 if assign[p] >= 0 else 0)
