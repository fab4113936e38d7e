"""The state of capacity-aware, enterprise-proposing deferred acceptance, kept between runs.

Projects propose down their lists (eligible offers, best first by the enterprise's view). An
offer holds the projects it prefers that fit: from what it holds plus the newcomer it keeps, in
its order of preference (the funder's view, ties by project id), each project whose amount fits
the capacity left and while deals are left; the rest are rejected and propose further down.

The state is arrays (see `kernels` for the layout) and the proposing runs compiled there
(`run`); this class grows the arrays and lengthens the lists when the kernel asks. Besides
proposing, the state can take projects out (`drop`), re-choose an offer's holdings under a new
capacity (`recap`), and find the projects whose past rejections no longer hold because an offer
gained room (`stability.unsettle`): what an incremental run needs (`market.py`).
`stability.blocking` tests many pairs at once (`kernels.among`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from matching.domain import kernels
from matching.domain.kernels import KEY_BITS
from matching.domain.preferences import Pool
from matching.domain.topcache import I64, B

Pairs = dict[tuple[int, int], int]  # (p, o) → place of o in p's list
HELD, APPS = 4096, 1 << 16  # first sizes of the holdings' and the applicants' arrays
NO_MOVES = np.zeros((0, 3), np.int64)


def _ints(x: Sequence[int] | I64) -> I64:
    return np.asarray(x, dtype=np.int64).copy()


def _fit(a: I64, n: int, fill: int) -> I64:
    return a if a.size >= n else np.r_[a, np.full(n - a.size, fill, dtype=np.int64)]


def _fit_b(a: B, n: int) -> B:
    return a if a.size >= n else np.r_[a, np.zeros(n - a.size, dtype=bool)]


class Acceptance:
    def __init__(
        self,
        lists: Pool,
        amount: Sequence[int] | I64,  # per project row: its amount
        tmax: Sequence[int] | I64,  # per offer row: ticket maximum
        cap: Sequence[int] | I64,  # per offer row: capacity left
        deals: Sequence[int] | I64,  # per offer row: deals left
        rank: Sequence[int] | I64,  # per project row: place of its id in sorted order
    ) -> None:
        self.lists = lists
        self.ptr, self.assign = np.zeros(0, np.int64), np.zeros(0, np.int64)
        self.room, self.slots = np.zeros(0, np.int64), np.zeros(0, np.int64)
        self.hstart, self.hcap, self.hn = (np.zeros(0, np.int64) for _ in range(3))
        self.hk, self.hp, self.ha, self.hj = (np.zeros(HELD, np.int64) for _ in range(4))
        self.hused = np.zeros(2, np.int64)  # [slots used, layout version]
        self.e_p, self.e_j, self.e_next = (np.zeros(APPS, np.int64) for _ in range(3))
        self.e_a, self.e_f = np.zeros(APPS, np.int64), np.zeros(APPS, np.int64)
        self.e_head, self.e_used = np.zeros(0, np.int64), np.zeros(1, np.int64)
        self.dirty_p: B = np.zeros(0, bool)  # projects whose standing changed
        self.dirty_o: B = np.zeros(0, bool)  # offers that let a project go
        self.touched_o: B = np.zeros(0, bool)  # offers whose holdings changed at all
        self.watch: B = np.zeros(0, bool)
        self.proposals = 0
        self.columns(amount, tmax, cap, deals, rank)

    # ---- the market's columns ----------------------------------------------------------------
    def columns(
        self,
        amount: Sequence[int] | I64,
        tmax: Sequence[int] | I64,
        cap: Sequence[int] | I64,
        deals: Sequence[int] | I64,
        rank: Sequence[int] | I64,
    ) -> None:
        """Take the market's columns; rows beyond the state's are new (nothing held, proposed)."""
        self.amount, self.tmax, self.rank = _ints(amount), _ints(tmax), _ints(rank)
        self.cap, self.deals = _ints(cap), _ints(deals)
        n_p = max(self.amount.size, self.rank.size, self.lists.start.size)
        self.lists.ensure(n_p)
        self.amount, self.rank = _fit(self.amount, n_p, 0), _fit(self.rank, n_p, 0)
        self.ptr, self.assign = _fit(self.ptr, n_p, 0), _fit(self.assign, n_p, -1)
        self.dirty_p, self.watch = _fit_b(self.dirty_p, n_p), _fit_b(self.watch, n_p)
        n_o, old = self.cap.size, self.room.size
        self.room, self.slots = _fit(self.room, n_o, 0), _fit(self.slots, n_o, 0)
        self.room[old:], self.slots[old:] = self.cap[old:], self.deals[old:]
        self.hstart, self.hcap = _fit(self.hstart, n_o, 0), _fit(self.hcap, n_o, 0)
        self.hn, self.e_head = _fit(self.hn, n_o, 0), _fit(self.e_head, n_o, -1)
        self.dirty_o, self.touched_o = _fit_b(self.dirty_o, n_o), _fit_b(self.touched_o, n_o)

    def key(self, p: int, f_q: int) -> int:
        """p's place in an offer's order: lower is preferred (higher score, then lower id)."""
        return ((1 << KEY_BITS) - f_q) << KEY_BITS | int(self.rank[p])

    def score(self, p: int, j: int) -> int:
        return int(self.lists.pool_f[self.lists.start[p] + j])

    def clear_marks(self) -> None:
        self.dirty_p[:] = False
        self.dirty_o[:] = False
        self.touched_o[:] = False

    def held_by(self, o: int) -> list[int]:
        if o >= self.hn.size:  # a new offer row
            return []
        s = int(self.hstart[o])
        return [int(p) for p in self.hp[s : s + int(self.hn[o])]]

    def assignment(self) -> dict[int, int]:
        ps = np.flatnonzero(self.assign >= 0)
        return dict(zip(ps.tolist(), self.assign[ps].tolist(), strict=True))

    # ---- proposing ------------------------------------------------------------------------------
    def _kernel(self, queue: I64, moves: I64, check: bool, limit: int) -> tuple[int, I64, int]:
        """The kernel until it is done or hits `limit`: (status, the queue left, moves made)."""
        L, moved = self.lists, 0
        self.watch[:] = False  # (lists about to run out are lengthened together within a run)
        while True:
            status, what, queue, made, k, n = kernels.run(
                queue,
                moves,
                check,
                limit,
                self.proposals,
                self.ptr,
                self.assign,
                L.start,
                L.length,
                L.complete,
                L.pool_o,
                L.pool_f,
                self.amount,
                self.tmax,
                self.rank,
                self.cap,
                self.deals,
                self.room,
                self.slots,
                self.hstart,
                self.hcap,
                self.hn,
                self.hk,
                self.hp,
                self.ha,
                self.hj,
                self.hused,
                self.e_p,
                self.e_j,
                self.e_a,
                self.e_f,
                self.e_next,
                self.e_head,
                self.e_used,
                self.dirty_p,
                self.dirty_o,
                self.touched_o,
                self.watch,
            )
            self.proposals, moves, moved = int(made), moves[k:], moved + int(n)
            if status == kernels.EXTEND:
                also = np.flatnonzero(self.watch)
                self.watch[:] = False
                L.extend(int(what), also)
                self.columns(self.amount, self.tmax, self.cap, self.deals, self.rank)
                if L.length[what] <= self.ptr[what]:
                    L.complete[what] = True  # nothing more (never asked again)
            elif status == kernels.HELD_FULL:
                self._grow_held(int(self.hcap[what]))
            elif status == kernels.APPS_FULL:
                self.compact_applicants()
            else:
                return int(status), queue, moved

    def run(self, queue: Iterable[int], limit: int | None = None) -> bool:
        """Propose until no one is left to (true), or until `proposals` passes `limit` (false:
        the state is then mid-run and must be restored). ~700,000 proposals at 100,000 ×
        10,000, compiled."""
        q = np.fromiter(queue, np.int64)
        done = self._kernel(q, NO_MOVES, False, -1 if limit is None else limit)[0]
        return done == kernels.DONE

    def moves(self, moves: I64, limit: int | None = None) -> tuple[bool, int]:
        """Each of `moves` (rows p, o, j) that still blocks, in order: p leaves what it holds
        for o (place j of its list); then deferred acceptance for whoever was let go, as `run`.
        (done, how many moved)."""
        empty = np.zeros(0, np.int64)
        status, _, moved = self._kernel(empty, moves, True, -1 if limit is None else limit)
        return status == kernels.DONE, moved

    def _grow_held(self, want: int) -> None:
        size = max(2 * self.hk.size, self.hk.size + 2 * want + 4)
        for name in ("hk", "hp", "ha", "hj"):
            a = getattr(self, name)
            setattr(self, name, np.r_[a, np.zeros(size - a.size, np.int64)])
        self.hused[1] += 1

    def compact_applicants(self) -> None:
        L = self.lists
        e = kernels.compact_applicants(
            self.e_head.size,
            self.ptr,
            L.start,
            L.length,
            L.pool_o,
            self.e_p,
            self.e_j,
            self.e_a,
            self.e_f,
            self.e_next,
            self.e_head,
        )
        self.e_p, self.e_j, self.e_a, self.e_f, self.e_next, self.e_head, used = e
        self.e_used[0] = used

    def leave(self, p: int) -> int | None:
        """p lets go of its offer (returned)."""
        o = int(self.assign[p])
        self.dirty_p[p] = True
        if o < 0:
            return None
        self.assign[p] = -1
        self.dirty_o[o] = self.touched_o[o] = True
        s, n = int(self.hstart[o]), int(self.hn[o])
        at = s + int(np.flatnonzero(self.hp[s : s + n] == p)[0])
        self.room[o] += self.ha[at]
        self.slots[o] += 1
        for a in (self.hk, self.hp, self.ha, self.hj):
            a[at : s + n - 1] = a[at + 1 : s + n]
        self.hn[o] = n - 1
        return o

    # ---- between runs ----------------------------------------------------------------------------
    def drop(self, projects: Iterable[int]) -> set[int]:
        """Take projects out as if they had never proposed; the offers they held."""
        freed = set[int]()
        for p in set(projects):
            if p >= self.ptr.size:
                continue
            o = self.leave(p)
            if o is not None:
                freed.add(o)
            self.ptr[p] = 0
        return freed

    def reset_offer(self, o: int) -> None:
        """o's terms changed: it holds nobody (its holders were dropped) and starts over."""
        self.hn[o] = 0
        self.room[o], self.slots[o] = self.cap[o], self.deals[o]

    def recap(self, o: int) -> list[int]:
        """o's capacity or deals changed: choose again from what it holds; the rejected."""
        s, n = int(self.hstart[o]), int(self.hn[o])
        run = [a[s : s + n].tolist() for a in (self.hk, self.hp, self.ha, self.hj)]
        room, slots, at, out = int(self.cap[o]), int(self.deals[o]), s, []
        for k, p, a, j in zip(*run, strict=True):
            if a <= room and slots > 0:
                self.hk[at], self.hp[at], self.ha[at], self.hj[at] = k, p, a, j
                at += 1
                room -= a
                slots -= 1
            else:
                self.assign[p] = -1
                out.append(p)
                self.dirty_p[p] = self.dirty_o[o] = True
        self.hn[o], self.room[o], self.slots[o] = at - s, room, slots
        self.touched_o[o] = True
        return out

    def rekey(self) -> None:
        """The id ranks changed (ids came or went): every holding's key again (the order of an
        offer's holdings does not change: ranks only order ids)."""
        n = self.hn
        hit = np.repeat(self.hstart, n) + np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
        p = self.hp[hit]
        f = self.lists.pool_f[self.lists.start[p] + self.hj[hit]]
        self.hk[hit] = ((1 << KEY_BITS) - f) << KEY_BITS | self.rank[p]

    def upto(self, p: int) -> int:
        """How many offers of its list p prefers to what it holds."""
        return int(self.ptr[p]) - (1 if self.assign[p] >= 0 else 0)
