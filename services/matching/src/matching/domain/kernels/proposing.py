"""Deferred acceptance over arrays: the proposal loop, a repair round's moves and one
`settle` try per call (layout and stopping rules: `kernels`)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from matching.domain.kernels.primitives import (
    APPS_FULL,
    DONE,
    EXTEND,
    HELD_FULL,
    LIMIT,
    _keeps,
    _leave,
    _propose,
    _rest,
    _room_for,
    _upto,
)


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
    e_a: Any,
    e_f: Any,
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
            e_a,
            e_f,
            e_next,
            e_head,
            e_used,
            dirty_p,
            dirty_o,
            touched_o,
        )
    return DONE, -1, _rest(buf, head, tail), made, k, moved
