"""Capacity-aware, enterprise-proposing deferred acceptance (`acceptance.py`), and repair.

Projects propose, in id order and then first-rejected first, down their lists; offers hold the
projects they prefer that fit (see `acceptance.py`).

Stability is pairwise with respect to that rule: (p, o) blocks when p prefers o to what it got
and o, choosing greedily from what it holds plus p, would keep p. Since what an offer holds is
itself a greedy choice, o keeps p exactly when, at p's place in o's order, the capacity and deals
left after the projects o prefers to p still admit p: a prefix sum, checked for all pairs at once.
With equal amounts (hospitals/residents) deferred acceptance leaves no blocking pair. With mixed
amounts a stable allocation may not exist. Repair rounds then satisfy blocking pairs, offer by
offer in its order of preference (each move re-checked against the moves before it), and resume
deferred acceptance for whoever was let go; only pairs of projects and offers that changed are
re-tested. Rounds stop when none is left, after `max_repair_rounds`, or after `patience` rounds
without improvement. With mixed amounts their moves undo each other (the rounds cycle: 15 →
144 → 245 → 15 at 30,000 × 3,000), so from the best state they found the residual pairs are
then tried one at a time (`settle`): a move is kept only if fewer pairs block after it. The
blocking pairs left are reported, never hidden. Everything is ordered by ids and scores, so
the same input gives the same output."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import chain, compress

import numpy as np

from matching.domain import kernels, stability
from matching.domain import saved as saving
from matching.domain.acceptance import Acceptance, Pairs
from matching.domain.kernels import KEY_BITS
from matching.domain.preferences import Pool
from matching.domain.topcache import I64

__all__ = ["Acceptance", "Pool", "Result", "allocate", "repair", "settle"]
Progress = Callable[[str, int, int], None]
SETTLE = 400_000  # proposals the one-at-a-time search after the batch's repair may make


@dataclass
class Result:
    assign: I64  # per project row: its offer row, -1 for none (a copy)
    blocking: list[tuple[int, int]]
    rounds: int
    proposals: int
    pairs: Pairs  # the blocking pairs with the place of the offer in the project's list
    amount: I64  # per project row
    tmax: I64  # per offer row

    @property
    def stable(self) -> bool:
        return not self.blocking

    @cached_property
    def assignment(self) -> dict[int, int]:
        """project row → offer row"""
        ps = np.flatnonzero(self.assign >= 0)
        return dict(zip(ps.tolist(), self.assign[ps].tolist(), strict=True))

    def amount_of(self, p: int) -> int:
        """What p gets where it is allocated."""
        return int(min(self.amount[p], self.tmax[self.assign[p]]))

    @property
    def amounts(self) -> dict[int, int]:
        return {p: self.amount_of(p) for p in self.assignment}


def allocate(
    order: Sequence[int],
    lists: Pool,
    amount: Sequence[int],
    tmax: Sequence[int],
    cap: Sequence[int],
    deals: Sequence[int],
    rank: Sequence[int],
    max_repair_rounds: int = 40,
    patience: int = 6,
    progress: Progress | None = None,
) -> Result:
    """`order`: the projects, by id. Per project row: `amount`, `rank` (of its id); per offer
    row: `tmax`, `cap` (capacity left) and `deals` (deals left)."""
    s = Acceptance(lists, amount, tmax, cap, deals, rank)
    s.run(order)
    blocking = stability.blocking(s, order)
    if progress:
        progress("deferred acceptance: proposals, blocking pairs", s.proposals, len(blocking))
    r = repair(s, blocking, max_repair_rounds, patience, progress)
    return result(s, settle(s, r.pairs, SETTLE), r.rounds)


def repair(
    s: Acceptance,
    blocking: Pairs,
    max_repair_rounds: int = 40,
    patience: int = 6,
    progress: Progress | None = None,
    budget: int | None = None,
) -> Result:
    """Repair rounds from `blocking` (the blocking pairs of the state); the state is left at the
    best allocation seen, which the result describes. `budget`: proposals the rounds may make
    (a round that would pass it is undone and the rounds stop), so that the work of a run after
    one change stays bounded whatever chains its moves set off. A set of blocking pairs seen
    before ends the rounds too: they cycle (15 → 144 → 245 → 15 at 30,000 × 3,000), and each
    round at 100,000 × 10,000 costs ~0.1-0.2 s."""
    best, saved, at_best = blocking, None, True
    seen = {frozenset(blocking)}
    rounds = stale = 0
    limit = None if budget is None else s.proposals + budget
    while blocking and rounds < max_repair_rounds and stale < patience:
        rounds += 1
        if at_best:
            saved = saving.save(s)  # a later round may be worse: come back to this one
        s.clear_marks()
        # offer by offer, each in its order of preference; a move is made only if its pair
        # still blocks after the moves before it (checked in the kernel)
        n = len(blocking)
        po = np.fromiter((x for pair in blocking for x in pair), np.int64, 2 * n).reshape(n, 2)
        bp, bo, bj = po[:, 0], po[:, 1], np.fromiter(blocking.values(), np.int64, n)
        f = s.lists.pool_f[s.lists.start[bp] + bj]
        key = ((1 << KEY_BITS) - f) << KEY_BITS | s.rank[bp]
        order = np.lexsort((key, bo))
        if not s.moves(np.stack([bp[order], bo[order], bj[order]], axis=1), limit)[0]:
            assert saved is not None
            saving.restore(s, saved)  # the best state seen; the rounds stop there
            return result(s, best, rounds)
        blocking = since(s, blocking)
        if progress:
            progress("repair round: blocking pairs", rounds, len(blocking))
        stale += 1
        at_best = len(blocking) < len(best)
        if at_best:
            best, stale = blocking, 0
        elif frozenset(blocking) in seen:
            break
        seen.add(frozenset(blocking))
    if not at_best and saved is not None:
        saving.restore(s, saved)
    return result(s, best, rounds)


def since(s: Acceptance, blocking: Pairs) -> Pairs:
    """The blocking pairs now, from those before the changes the state's marks record: only
    pairs of a project or an offer that changed can have changed. New blocking pairs need a
    project that lost ground or an offer that let one go; old ones may also have been resolved
    by an offer taking someone in."""
    dp, do, to = s.dirty_p, s.dirty_o, s.touched_o
    n = len(blocking)
    keys, places = list(blocking), list(blocking.values())
    po = np.fromiter(chain.from_iterable(keys), np.int64, 2 * n).reshape(n, 2)
    stays, touched = ~dp[po[:, 0]], to[po[:, 1]]
    keep = (stays & ~touched).tolist()  # (masks over arrays: thousands of pairs per call)
    again = stays & touched & ~do[po[:, 1]]  # offers that only took projects in
    out = dict(zip(compress(keys, keep), compress(places, keep), strict=True))
    ps = np.flatnonzero(dp)
    ps = ps[np.argsort(s.rank[ps], kind="stable")]
    gj = np.fromiter(places, np.int64, n)[again]
    out.update(stability.among(s, ps, np.flatnonzero(do), po[again], gj))
    return out


def result(s: Acceptance, blocking: Pairs, rounds: int) -> Result:
    rank = s.rank
    return Result(
        assign=s.assign.copy(),
        blocking=sorted(blocking, key=lambda x: (rank[x[0]], blocking[x])),
        rounds=rounds,
        proposals=s.proposals,
        pairs=blocking,
        amount=s.amount,
        tmax=s.tmax,
    )


PASSES = 3  # passes of `settle` over the residual pairs at most


def settle(
    s: Acceptance,
    blocking: Pairs,
    budget: int,
    per_try: int = 5_000,
    focus: Collection[tuple[int, int]] | None = None,
    tries: int | None = None,
) -> Pairs:
    """Try the pairs of `blocking` (all those of the state `s`; only those in `focus` if
    given; `tries` of them at most) one by one; the state is left at the best allocation
    found, and its blocking pairs returned (never more than before).

    A try: the project leaves what it holds for the offer, deferred acceptance resumes for
    whoever the offer lets go (at most `per_try` proposals), and the blocking pairs are read
    again from the marks of what moved (`since`); kept if fewer pairs block, else undone.
    Passes repeat while one improves, within `budget` proposals in all (441 → 29 pairs at
    100,000 × 10,000 in ~0.6 s). Undoing copies back only what the marks name (`dirty_p`:
    projects whose pointer or assignment changed; `touched_o`: offers whose holdings
    changed), so a try costs what its chain costs, not a copy of 100,000 projects."""
    if not blocking or (focus is not None and not focus):
        return blocking
    base = saving.save(s)
    rank = s.rank
    end, left = s.proposals + budget, -1 if tries is None else tries
    for _ in range(PASSES):
        better = False
        tried = (
            blocking.items() if focus is None else [x for x in blocking.items() if x[0] in focus]
        )
        order = sorted(tried, key=lambda x: (x[0][1], rank[x[0][0]]))
        for (p, o), j in order:
            if s.proposals >= end or left == 0:
                return blocking
            if (p, o) not in blocking:  # resolved by a move before
                continue
            s.clear_marks()
            move = np.asarray([[p, o, j]], np.int64)
            done, moved = s.moves(move, min(end, s.proposals + 1 + per_try))
            if not moved:  # no longer blocks
                continue
            left -= 1
            now = since(s, blocking) if done else None
            if now is not None and len(now) < len(blocking):
                saving.copy_marked(s, base, keep=True)
                blocking, better = now, True
            else:
                saving.copy_marked(s, base, keep=False)
        if not better:
            break
    return blocking


def warm_up() -> None:
    """Compile every kernel (or load it from numba's cache) on a tiny instance, so that the
    first allocation does not wait for it; where the allocation runs calls this as it starts."""
    pool = Pool.of({0: [0, 1], 1: [0], 2: [0, 1]}, {0: [5, 3], 1: [4], 2: [6, 1]})
    s = Acceptance(pool, [2, 2, 3], [9, 9], [4, 3], [9, 9], [0, 1, 2])
    s.run([0, 1, 2])
    stability.blocking(s, [0, 1, 2], [0, 1], {(1, 0): 0})
    stability.unsettle(s, {0, 1}, 8)
    s.moves(np.asarray([[1, 0, 0]], np.int64))
    s.compact_applicants()
    c, lists = np.ones(2, np.int64), np.zeros((2, 2), np.int64)
    kernels.lists_differ(2, c, c, lists, lists, lists, lists, c > 0, c > 0)
