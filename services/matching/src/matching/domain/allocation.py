"""Capacity-aware, enterprise-proposing deferred acceptance, and its blocking pairs.

Projects propose, in id order and then first-rejected first, down their lists (eligible offers,
best first by the enterprise's view). An offer holds the projects it prefers that fit: from what
it holds plus the newcomer it keeps, in its order of preference (the funder's view, ties by
project id), each project whose amount fits the capacity left and while deals are left; the rest
are rejected and propose further down.

Stability is pairwise with respect to that rule: (p, o) blocks when p prefers o to what it got
and o, choosing greedily from what it holds plus p, would keep p. Since what an offer holds is
itself a greedy choice, o keeps p exactly when, at p's place in o's order, the capacity and deals
left after the projects o prefers to p still admit p: a prefix sum, checked for all pairs at once.
With equal amounts (hospitals/residents) deferred acceptance leaves no blocking pair. With mixed
amounts a stable allocation may not exist. Repair rounds then satisfy blocking pairs, offer by
offer in its order of preference (each move re-checked against the moves before it), and resume
deferred acceptance for whoever was let go; only pairs of projects and offers that changed are
re-tested. Rounds stop when none is left, after `max_repair_rounds`, or after `patience` rounds
without improvement; the best allocation seen is returned with its blocking pairs, which are
reported, never hidden. Everything is ordered by ids and scores, so the same input gives the
same output."""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from matching.domain.blocking import I64, kept

KEY_BITS = 31
Entry = tuple[int, int, int, int]  # (the offer's key for p, p, amount, place of o in p's list)
Pairs = dict[tuple[int, int], int]


class Lists(Protocol):
    """Each project's eligible offers, best first, and the funder's score of each pair; a list
    may be a prefix (`complete` false) until `extend` lengthens it, keeping its order."""

    offers: dict[int, list[int]]
    scores: dict[int, list[int]]
    complete: dict[int, bool]

    def extend(self, p: int, also: set[int]) -> None:
        """Lengthen p's list (and, as a batch, those of `also`)."""


@dataclass
class Result:
    assignment: dict[int, int]  # project → offer
    amounts: dict[int, int]
    blocking: list[tuple[int, int]]
    rounds: int
    proposals: int

    @property
    def stable(self) -> bool:
        return not self.blocking


@dataclass
class _State:
    lists: Lists
    amount: Sequence[int]  # per project: its amount
    tmax: Sequence[int]  # per offer: ticket maximum
    cap: Sequence[int]  # per offer: capacity left
    deals: Sequence[int]  # per offer: deals left
    rank: Sequence[int]  # per project: place of its id in sorted order
    ptr: dict[int, int] = field(default_factory=dict)
    assign: dict[int, int] = field(default_factory=dict)
    held: dict[int, list[Entry]] = field(default_factory=dict)  # what each offer holds
    room: dict[int, int] = field(default_factory=dict)
    slots: dict[int, int] = field(default_factory=dict)
    applicants: dict[int, tuple[list[int], list[int]]] = field(default_factory=dict)  # p, place
    dirty_p: set[int] = field(default_factory=set)  # projects whose standing changed
    dirty_o: set[int] = field(default_factory=set)  # offers that let a project go
    touched_o: set[int] = field(default_factory=set)  # offers whose holdings changed at all
    arrays: list[I64] = field(default_factory=list)  # rank, amount, tmax, cap, deals
    proposals: int = 0

    def key(self, p: int, f_q: int) -> int:
        """p's place in an offer's order: lower is preferred (higher score, then lower id)."""
        return ((1 << KEY_BITS) - f_q) << KEY_BITS | self.rank[p]

    def propose(self, p: int, o: int, f_q: int, j: int) -> list[int]:
        """o (place j in p's list) chooses from what it holds plus p; the projects it rejects."""
        self.proposals += 1
        ap, aj = self.applicants.setdefault(o, ([], []))
        ap.append(p)
        aj.append(j)
        self.dirty_p.add(p)
        k, a = self.key(p, f_q), min(self.amount[p], self.tmax[o])
        held = self.held.get(o)
        if held is None:
            held = self.held[o] = []
            self.room[o], self.slots[o] = self.cap[o], self.deals[o]
        if not held or k > held[-1][0]:  # p comes last: it only needs what is left
            if a <= self.room[o] and self.slots[o] > 0:
                held.append((k, p, a, j))
                self.touched_o.add(o)
                self.room[o] -= a
                self.slots[o] -= 1
                self.assign[p] = o
                return []
            return [p]
        i = bisect_left(held, (k,))
        room = self.room[o] + sum(x[2] for x in held[i:])
        slots = self.slots[o] + len(held) - i
        kept, rejected = [], []
        for entry in [(k, p, a, j), *held[i:]]:
            if entry[2] <= room and slots > 0:
                kept.append(entry)
                room -= entry[2]
                slots -= 1
            else:
                rejected.append(entry)
        held[i:] = kept
        self.touched_o.add(o)
        self.room[o], self.slots[o] = room, slots
        for entry in kept:
            self.assign[entry[1]] = o
        for entry in rejected:
            if self.assign.get(entry[1]) == o:
                del self.assign[entry[1]]
                self.dirty_p.add(entry[1])
                self.dirty_o.add(o)
        return [entry[1] for entry in rejected]

    def run(self, queue: deque[int]) -> None:
        offers, scores, complete = self.lists.offers, self.lists.scores, self.lists.complete
        ptr, assign, watch = self.ptr, self.assign, set[int]()
        while queue:
            p = queue.popleft()
            if p in assign:  # moved by a repair while it waited
                continue
            i, offs = ptr.get(p, 0), offers[p]
            if i >= len(offs):
                if complete[p]:
                    continue
                watch.discard(p)
                self.lists.extend(p, watch)
                watch.clear()
                offs = offers[p]
                if i >= len(offs):
                    continue
            ptr[p] = i + 1
            if i + 2 >= len(offs) and not complete[p]:
                watch.add(p)  # lengthened together with the next one that runs out
            queue.extend(self.propose(p, offs[i], scores[p][i], i))

    def leave(self, p: int) -> None:
        o = self.assign.pop(p, None)
        self.dirty_p.add(p)
        if o is not None:
            self.dirty_o.add(o)
            self.touched_o.add(o)
            held = self.held[o]
            j = next(j for j, x in enumerate(held) if x[1] == p)
            self.room[o] += held[j][2]
            self.slots[o] += 1
            del held[j]

    def keeps(self, o: int, p: int, f_q: int) -> bool:
        """Would o, choosing from what it holds plus p, keep p?"""
        held = self.held.get(o, [])
        i = bisect_left(held, (self.key(p, f_q),))
        room = self.cap[o] - sum(x[2] for x in held[:i])
        return min(self.amount[p], self.tmax[o]) <= room and self.deals[o] - i > 0

    def upto(self, p: int) -> int:
        """How many offers of its list p prefers to what it holds."""
        return self.ptr.get(p, 0) - (1 if p in self.assign else 0)

    def blocking(
        self, projects: Iterable[int], offers: Iterable[int] = (), pairs: Pairs | None = None
    ) -> Pairs:
        """The blocking pairs among all preferred offers of `projects`, all applicants of
        `offers` and the given `pairs`: {(p, o): place of o in p's list}."""
        lists_o, lists_f = self.lists.offers, self.lists.scores
        qp, qo, qf, qj = list[int](), list[int](), list[int](), list[int]()
        seen = set()
        for (p, o), j in (pairs or {}).items():
            qp.append(p)
            qo.append(o)
            qf.append(lists_f[p][j])
            qj.append(j)
        for p in projects:
            n = self.upto(p)
            if n > 0:
                seen.add(p)
                qp += [p] * n
                qo += lists_o[p][:n]
                qf += lists_f[p][:n]
                qj += range(n)
        offers = list(offers)
        if offers:
            upto = np.zeros(len(self.rank), dtype=np.int64)
            upto[list(self.ptr)] = list(self.ptr.values())
            upto[list(self.assign)] -= 1
            upto[list(seen)] = 0  # already asked above
            for o in offers:
                ap, aj = self.applicants.get(o, ([], []))
                a_p, a_j = np.asarray(ap, dtype=np.int64), np.asarray(aj, dtype=np.int64)
                hit = np.unique((a_p << 20 | a_j)[a_j < upto[a_p]])
                for p, j in zip((hit >> 20).tolist(), (hit & 0xFFFFF).tolist(), strict=True):
                    qp.append(p)
                    qo.append(o)
                    qf.append(lists_f[p][j])
                    qj.append(j)
        if not qp:
            return {}
        p_, o_, f_ = (np.asarray(x, dtype=np.int64) for x in (qp, qo, qf))
        if not self.arrays:
            self.arrays = [
                np.asarray(x, dtype=np.int64)
                for x in (self.rank, self.amount, self.tmax, self.cap, self.deals)
            ]
        rank, amount, tmax, cap, deals = self.arrays
        h_o, h_k, h_a = list[int](), list[int](), list[int]()
        for o in set(qo):
            held = self.held.get(o, ())
            h_o += [o] * len(held)
            h_k += [x[0] for x in held]
            h_a += [x[2] for x in held]
        hit = kept(
            np.asarray(h_o, dtype=np.int64),
            np.asarray(h_k, dtype=np.int64),
            np.asarray(h_a, dtype=np.int64),
            o_,
            ((1 << KEY_BITS) - f_) << KEY_BITS | rank[p_],
            np.minimum(amount[p_], tmax[o_]),
            cap,
            deals,
        )
        return {(qp[i], qo[i]): qj[i] for i in np.flatnonzero(hit).tolist()}


def allocate(
    order: Sequence[int],
    lists: Lists,
    amount: Sequence[int],
    tmax: Sequence[int],
    cap: Sequence[int],
    deals: Sequence[int],
    rank: Sequence[int],
    max_repair_rounds: int = 40,
    patience: int = 6,
    progress: Callable[[str, int, int], None] | None = None,
) -> Result:
    """`order`: the projects, by id. Per project row: `amount`, `rank` (of its id); per offer
    row: `tmax`, `cap` (capacity left) and `deals` (deals left)."""
    s = _State(lists, amount, tmax, cap, deals, rank)
    s.run(deque(order))
    blocking = s.blocking(order)
    if progress:
        progress("deferred acceptance: proposals, blocking pairs", s.proposals, len(blocking))
    best = (len(blocking), dict(s.assign), blocking)
    rounds = stale = 0
    while blocking and rounds < max_repair_rounds and stale < patience:
        rounds += 1
        s.dirty_p.clear()
        s.dirty_o.clear()
        s.touched_o.clear()
        by_offer: dict[int, list[tuple[int, int, int]]] = {}
        for (p, o), j in blocking.items():
            by_offer.setdefault(o, []).append((s.key(p, lists.scores[p][j]), p, j))
        queue: deque[int] = deque()
        for o in sorted(by_offer):
            for _, p, j in sorted(by_offer[o]):
                f_q = lists.scores[p][j]
                if s.upto(p) > j and s.keeps(o, p, f_q):  # still blocking after earlier moves
                    s.leave(p)
                    s.ptr[p] = j + 1
                    queue.extend(s.propose(p, o, f_q, j))
        s.run(queue)
        # Only pairs of a project or an offer that changed can have changed. New blocking pairs
        # need a project that lost ground or an offer that let one go; old ones may also have
        # been resolved by an offer taking someone in.
        dp, do, to = s.dirty_p, s.dirty_o, s.touched_o
        recheck = {x: j for x, j in blocking.items() if x[0] not in dp and x[1] in to - do}
        blocking = {x: j for x, j in blocking.items() if x[0] not in dp and x[1] not in to}
        blocking.update(s.blocking(sorted(dp, key=lambda q: rank[q]), sorted(do), recheck))
        if progress:
            progress("repair round: blocking pairs", rounds, len(blocking))
        stale += 1
        if len(blocking) < best[0]:
            best, stale = (len(blocking), dict(s.assign), blocking), 0
    _, assign, blocking = best
    return Result(
        assignment=assign,
        amounts={p: min(amount[p], tmax[o]) for p, o in assign.items()},
        blocking=sorted(blocking, key=lambda x: (rank[x[0]], blocking[x])),
        rounds=rounds,
        proposals=s.proposals,
    )
