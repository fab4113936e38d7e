"""Capacity-aware, enterprise-proposing deferred acceptance.

Each project proposes to its eligible offers in its own order of preference (the enterprise's
view). An offer holds the projects it prefers that fit: from the projects it holds plus the new
one, it keeps them greedily in its order of preference (the funder's view; ties by project id)
while the amount fits its remaining capacity and the count its remaining deals; the rest are
rejected and propose further down their lists.

Stability is pairwise with respect to that rule: (p, o) blocks when p prefers o to what it got
and o, choosing greedily from what it holds plus p, would keep p. With equal amounts this is
the hospitals/residents setting and the result is always stable. With mixed amounts a stable
allocation may not exist; the engine then tries to remove blocking pairs (the blocking project
moves to the offer, which re-chooses), and reports those it could not remove with
`stable=False`, never a silently unstable result."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


class Preferences(Protocol):
    """What the allocation needs to know, by row index of projects and offers."""

    def ranked(self, p: int) -> Sequence[int]:
        """The first of p's eligible offers, best first (may be a prefix)."""

    def complete(self, p: int) -> Sequence[int]:
        """All of p's eligible offers, best first."""

    def funder_key(self, p: int, o: int) -> tuple[float, int]:
        """Sort key of p in o's preference (lower is preferred)."""

    def amount(self, p: int, o: int) -> int: ...


@dataclass
class Result:
    assignment: dict[int, int]  # project row → offer row
    blocking: list[tuple[int, int]]
    rounds: int
    proposals: int

    @property
    def stable(self) -> bool:
        return not self.blocking


@dataclass
class _State:
    prefs: Preferences
    cap: dict[int, int]
    deals: dict[int, int]
    lists: dict[int, Sequence[int]] = field(default_factory=dict)
    full: set[int] = field(default_factory=set)
    ptr: dict[int, int] = field(default_factory=dict)
    held: dict[int, list[int]] = field(default_factory=dict)
    assign: dict[int, int] = field(default_factory=dict)
    proposals: int = 0

    def choose(self, o: int, candidates: list[int]) -> list[int]:
        room, slots, kept = self.cap[o], self.deals[o], []
        for p in sorted(candidates, key=lambda q: self.prefs.funder_key(q, o)):
            if slots <= 0:
                break
            a = self.prefs.amount(p, o)
            if a <= room:
                kept.append(p)
                room -= a
                slots -= 1
        return kept

    def next_offer(self, p: int) -> int | None:
        lst = self.lists.get(p)
        if lst is None:
            lst = self.lists[p] = self.prefs.ranked(p)
        i = self.ptr.get(p, 0)
        if i >= len(lst) and p not in self.full:
            lst = self.lists[p] = self.prefs.complete(p)
            self.full.add(p)
        if i >= len(lst):
            return None
        self.ptr[p] = i + 1
        return lst[i]

    def offer_to(self, p: int, o: int, queue: deque[int]) -> None:
        self.proposals += 1
        candidates = [*self.held.get(o, []), p]
        kept = self.choose(o, candidates)
        self.held[o] = kept
        kept_set = set(kept)
        for q in candidates:
            if q in kept_set:
                self.assign[q] = o
            else:
                if self.assign.get(q) == o:
                    del self.assign[q]
                queue.append(q)

    def run(self, queue: deque[int]) -> None:
        while queue:
            p = queue.popleft()
            if p in self.assign:
                continue
            o = self.next_offer(p)
            if o is not None:
                self.offer_to(p, o, queue)

    def blocking(self) -> list[tuple[int, int]]:
        out = []
        for p in sorted(self.ptr):
            lst = self.lists.get(p, ())
            upto = self.ptr[p] - (1 if p in self.assign else 0)
            for o in lst[:upto]:
                if o != self.assign.get(p) and p in self.choose(o, [*self.held.get(o, []), p]):
                    out.append((p, o))
        return out

    def move(self, p: int, o: int, queue: deque[int]) -> None:
        current = self.assign.pop(p, None)
        if current is not None:
            self.held[current] = [q for q in self.held[current] if q != p]
        self.ptr[p] = list(self.lists[p]).index(o) + 1
        self.offer_to(p, o, queue)


def allocate(
    projects: Sequence[int],
    prefs: Preferences,
    capacity: dict[int, int],
    deals: dict[int, int],
    max_repair_rounds: int = 20,
) -> Result:
    """`projects` in proposing order (ids sorted, for determinism); `capacity` and `deals` give
    each offer's remaining amount and deal count."""
    state = _State(prefs, capacity, deals)
    queue = deque(projects)
    state.run(queue)
    blocking = state.blocking()
    rounds = 0
    while blocking and rounds < max_repair_rounds:
        rounds += 1
        p, o = blocking[0]
        state.move(p, o, queue)
        state.run(queue)
        blocking = state.blocking()
    return Result(dict(state.assign), blocking, rounds, state.proposals)
