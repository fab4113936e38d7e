"""The state of capacity-aware, enterprise-proposing deferred acceptance, kept between runs.

Projects propose down their lists (eligible offers, best first by the enterprise's view). An
offer holds the projects it prefers that fit: from what it holds plus the newcomer it keeps, in
its order of preference (the funder's view, ties by project id), each project whose amount fits
the capacity left and while deals are left; the rest are rejected and propose further down.

Besides proposing (`run`), the state can take projects out (`drop`), re-choose an offer's
holdings under a new capacity (`recap`), and find the projects whose past rejections no longer
hold because an offer gained room (`unsettle`): what an incremental run needs (`incremental.py`).
`blocking` tests many pairs at once with the vectorised kernel of `blocking.py`."""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from matching.domain import blocking
from matching.domain.blocking import I64, KEY_BITS

Entry = tuple[int, int, int, int]  # (the offer's key for p, p, amount, place of o in p's list)
Pairs = dict[tuple[int, int], int]  # (p, o) → place of o in p's list


class Lists(Protocol):
    """Each project's eligible offers, best first, and the funder's score of each pair; a list
    may be a prefix (`complete` false) until `extend` lengthens it, keeping its order."""

    offers: dict[int, list[int]]
    scores: dict[int, list[int]]
    complete: dict[int, bool]

    def extend(self, p: int, also: set[int]) -> None:
        """Lengthen p's list (and, as a batch, those of `also`)."""


Saved = tuple[
    dict[int, int], dict[int, int], dict[int, list[Entry]], dict[int, int], dict[int, int]
]


@dataclass
class Acceptance:
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
    # o → {p: place << KEY_BITS | the funder's score}: the blocking test reads both at once
    applicants: dict[int, dict[int, int]] = field(default_factory=dict)
    dirty_p: set[int] = field(default_factory=set)  # projects whose standing changed
    dirty_o: set[int] = field(default_factory=set)  # offers that let a project go
    touched_o: set[int] = field(default_factory=set)  # offers whose holdings changed at all
    arrays: list[I64] = field(default_factory=list)  # rank, amount, tmax, cap, deals
    proposals: int = 0

    def key(self, p: int, f_q: int) -> int:
        """p's place in an offer's order: lower is preferred (higher score, then lower id)."""
        return ((1 << KEY_BITS) - f_q) << KEY_BITS | self.rank[p]

    def clear_marks(self) -> None:
        self.dirty_p.clear()
        self.dirty_o.clear()
        self.touched_o.clear()

    def _holdings(self, o: int) -> list[Entry]:
        held = self.held.get(o)
        if held is None:
            held = self.held[o] = []
            self.room[o], self.slots[o] = self.cap[o], self.deals[o]
        return held

    def propose(self, p: int, o: int, f_q: int, j: int) -> list[int]:
        """o (place j in p's list) chooses from what it holds plus p; the projects it rejects."""
        self.proposals += 1
        self.applicants.setdefault(o, {})[p] = j << KEY_BITS | f_q
        self.dirty_p.add(p)
        k, a = self.key(p, f_q), min(self.amount[p], self.tmax[o])
        held = self._holdings(o)
        if a <= self.room[o] and self.slots[o] > 0:
            # p fits in what is left: choosing again keeps everyone (each held project's room
            # at its turn shrinks by p's amount at most, and all of them fit with p)
            insort(held, (k, p, a, j))
            self.touched_o.add(o)
            self.room[o] -= a
            self.slots[o] -= 1
            self.assign[p] = o
            return []
        return self._choose(p, o, k, a, j, held)

    def _choose(self, p: int, o: int, k: int, a: int, j: int, held: list[Entry]) -> list[int]:
        """o chooses from what it holds plus p (key k, amount a, place j), p not fitting in
        what is left; the projects it rejects."""
        if not held or k > held[-1][0]:  # p comes last and does not fit
            return [p]
        i = bisect_left(held, (k,))
        room = self.room[o] + sum(x[2] for x in held[i:])
        slots = self.slots[o] + len(held) - i
        kept_, rejected = [], []
        for entry in [(k, p, a, j), *held[i:]]:
            if entry[2] <= room and slots > 0:
                kept_.append(entry)
                room -= entry[2]
                slots -= 1
            else:
                rejected.append(entry)
        held[i:] = kept_
        self.touched_o.add(o)
        self.room[o], self.slots[o] = room, slots
        for entry in kept_:
            self.assign[entry[1]] = o
        for entry in rejected:
            if self.assign.get(entry[1]) == o:
                del self.assign[entry[1]]
                self.dirty_p.add(entry[1])
                self.dirty_o.add(o)
        return [entry[1] for entry in rejected]

    def run(self, queue: deque[int], limit: int | None = None) -> bool:
        """Propose until no one is left to (true), or until `proposals` passes `limit` (false:
        the state is then mid-run and must be restored).

        The hot loop of every allocation (~700,000 proposals at 100,000 × 10,000): `propose`'s
        common case, a project that fits in what the offer has left, is written out here with
        local names (a method call, `key` and `setdefault` per proposal cost ~40 % of the run)."""
        offers, scores, complete = self.lists.offers, self.lists.scores, self.lists.complete
        ptr, assign, watch = self.ptr, self.assign, set[int]()
        held_, room_, slots_ = self.held, self.room, self.slots
        applicants, dirty_p, touched_o = self.applicants, self.dirty_p, self.touched_o
        amount, tmax, rank, cap, deals = self.amount, self.tmax, self.rank, self.cap, self.deals
        top = 1 << KEY_BITS
        stop = -1 if limit is None else limit
        made = self.proposals
        popleft, extend = queue.popleft, queue.extend
        while queue:
            if made > stop >= 0:
                self.proposals = made
                return False
            p = popleft()
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
            o, f_q = offs[i], scores[p][i]
            made += 1
            mine = applicants.get(o)
            if mine is None:
                mine = applicants[o] = {}
            mine[p] = i << KEY_BITS | f_q
            dirty_p.add(p)
            a = amount[p]
            t = tmax[o]
            if t < a:
                a = t
            held = held_.get(o)
            if held is None:
                held = held_[o] = []
                room_[o], slots_[o] = cap[o], deals[o]
            if a <= room_[o] and slots_[o] > 0:  # fits in what is left (see `propose`)
                insort(held, ((top - f_q) << KEY_BITS | rank[p], p, a, i))
                touched_o.add(o)
                room_[o] -= a
                slots_[o] -= 1
                assign[p] = o
                continue
            self.proposals = made
            extend(self._choose(p, o, (top - f_q) << KEY_BITS | rank[p], a, i, held))
        self.proposals = made
        return True

    def leave(self, p: int) -> int | None:
        """p lets go of its offer (returned)."""
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
        return o

    # ---- between runs ----------------------------------------------------------------------------
    def drop(self, projects: Iterable[int]) -> set[int]:
        """Take projects out as if they had never proposed (their lists must still be the ones
        they proposed from); the offers they held."""
        freed, applicants = set[int](), self.applicants
        for p in set(projects):
            o = self.leave(p)
            if o is not None:
                freed.add(o)
            for a in self.lists.offers.get(p, ()):  # p applied to some of them
                mine = applicants.get(a)
                if mine:
                    mine.pop(p, None)
            self.ptr.pop(p, None)
        return freed

    def recap(self, o: int) -> list[int]:
        """o's capacity or deals changed: choose again from what it holds; the rejected."""
        held = self.held.pop(o, None)
        self.room.pop(o, None)
        self.slots.pop(o, None)
        out = []
        for entry in held or ():
            del self.assign[entry[1]]
        for entry in held or ():
            p = entry[1]
            h = self._holdings(o)
            if entry[2] <= self.room[o] and self.slots[o] > 0:
                h.append(entry)
                self.room[o] -= entry[2]
                self.slots[o] -= 1
                self.assign[p] = o
            else:
                out.append(p)
                self.dirty_p.add(p)
                self.dirty_o.add(o)
        self.touched_o.add(o)
        return out

    def unsettle(self, opened: set[int], limit: int) -> set[int] | None:
        """Offers in `opened` gained room: the projects they rejected that are worse off now may
        be kept there. Those projects, and transitively the projects rejected by the offers they
        would leave, must propose again from the top (deferred acceptance from a state whose
        every rejection still holds gives the batch result). None if more than `limit` would."""
        out, stack = set[int](), list(opened)
        seen = set(opened)
        while stack:
            o = stack.pop()
            for p, v in self.applicants.get(o, {}).items():
                if p in out or self.assign.get(p) == o or v >> KEY_BITS >= self.upto(p):
                    continue
                out.add(p)
                if len(out) > limit:
                    return None
                mine = self.assign.get(p)
                if mine is not None and mine not in seen:
                    seen.add(mine)
                    stack.append(mine)
        return out

    def rekey(self, moved: set[int]) -> None:
        """The id ranks of `moved` projects changed (ids were added or removed); their order
        among themselves did not, so each offer's holdings stay sorted."""
        scores = self.lists.scores
        for o, held in self.held.items():
            for i, (_, p, a, j) in enumerate(held):
                if p in moved:
                    held[i] = (self.key(p, scores[p][j]), p, a, j)
            self.held[o] = held

    def save(self) -> Saved:
        return (
            dict(self.ptr),
            dict(self.assign),
            {o: list(h) for o, h in self.held.items()},
            dict(self.room),
            dict(self.slots),
        )

    def restore(self, saved: Saved) -> None:
        ptr, assign, held, room, slots = saved
        self.ptr, self.assign, self.held = (
            dict(ptr),
            dict(assign),
            {o: list(h) for o, h in held.items()},
        )
        self.room, self.slots = dict(room), dict(slots)

    # ---- stability -------------------------------------------------------------------------------
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
        return blocking.among(self, projects, offers, pairs)
