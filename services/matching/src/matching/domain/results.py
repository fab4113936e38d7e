"""What the engine answers: proposals, deltas, explanations, advice and the allocation."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

Pair = tuple[str, str]  # (project id, offer id)
MAP_CHUNK = 10_000  # entries of `Allocation.as_map` made at a time by `make_map`
Breakdown = dict[str, Any]  # {"total", "terms": [{"criterion", "score", "weight", ...}]}


@dataclass(frozen=True)
class Proposal:
    """An eligible offer for a project, ranked by the combined score (mean of both views)."""

    project_id: str
    offer_id: str
    rank: int  # 1 = best for the project
    score: float  # combined, 0..1
    enterprise_score: float
    funder_score: float
    allocated: bool | None  # None: asked without the allocation
    enterprise_view: Breakdown | None = None
    funder_view: Breakdown | None = None

    @classmethod
    def made(
        cls,
        project_id: str,
        offer_id: str,
        rank: int,
        score: float,
        enterprise_score: float,
        funder_score: float,
        allocated: bool | None,
        enterprise_view: Breakdown | None = None,
        funder_view: Breakdown | None = None,
    ) -> Proposal:
        """`Proposal(...)`, the same fields, without the frozen dataclass's `__init__` (one
        `object.__setattr__` per field, nothing else: 3.6 against 1.3 µs, and a wide change
        makes ~300, its proposals and then their breakdowns). Still frozen after."""
        p = object.__new__(cls)
        object.__setattr__(
            p,
            "__dict__",
            {
                "project_id": project_id,
                "offer_id": offer_id,
                "rank": rank,
                "score": score,
                "enterprise_score": enterprise_score,
                "funder_score": funder_score,
                "allocated": allocated,
                "enterprise_view": enterprise_view,
                "funder_view": funder_view,
            },
        )
        return p


@dataclass
class Delta:
    """How the proposals (each project's top k) changed: pairs that entered, left, or stayed
    with a different score. Rank shifts follow from the other entries of the same project."""

    added: list[Pair] = field(default_factory=list)
    removed: list[Pair] = field(default_factory=list)
    changed: list[Pair] = field(default_factory=list)

    def merge(self, other: Delta) -> Delta:
        self.added += other.added
        self.removed += other.removed
        self.changed += other.changed
        return self

    @property
    def projects(self) -> set[str]:
        return {p for p, _ in (*self.added, *self.removed, *self.changed)}

    @property
    def offers(self) -> set[str]:
        return {o for _, o in (*self.added, *self.removed, *self.changed)}

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


@dataclass(frozen=True)
class Explanation:
    project_id: str
    offer_id: str
    eligible: bool
    reasons: list[dict[str, Any]]  # one per failed rule: {"rule", "need", "offer", ...}
    score: float | None  # combined; None when not eligible
    enterprise_view: Breakdown
    funder_view: Breakdown
    rank: int | None = None  # among the project's proposals, if proposed
    allocated: bool = False


@dataclass(frozen=True)
class Advice:
    """One change to the project that would make `gain` more offers eligible (net)."""

    change: str  # human readable: "obtain high_tech_enterprise certification"
    detail: dict[str, Any]  # machine readable: {"kind": "qualification", "value": ...}
    gain: int
    offer_ids: tuple[str, ...] = ()  # the newly eligible offers (the first 20)
    lost: int = 0  # offers that would no longer be eligible


@dataclass(frozen=True)
class Assignment:
    project_id: str
    offer_id: str
    amount_cny: int


Ids = npt.NDArray[np.str_]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class Allocation:
    """Each project at most one offer covering its amount, within every offer's capacity and
    deals. `stable` is true exactly when `blocking_pairs` is empty.

    Held as columns (numpy arrays: one object each, whatever the size of the market), not one
    Python object per assignment: at 100,000 × 10,000 the ~78,000 `Assignment`s of each run
    came back from the child process unpickled into the service's heap, set off a full garbage
    collection in every refresh (~200 ms, GETs waiting behind it) and stayed for the next ones
    to walk. `assignments` and `blocking_pairs` make the objects, for reports and tests."""

    project_ids: Ids  # the allocated projects, in id order
    offer_ids: Ids  # the offer of each
    amounts: I64  # what each gets
    blocking: Ids  # shape (n, 2): the blocking pairs' (project id, offer id), sorted
    stable: bool
    # how the run went, not what it decided: the number of proposals depends on the order in
    # which tied applicants come (two runs over the same market in another order differ here)
    repair_rounds: int = 0
    proposals_made: int = 0
    market_version: int = 0  # the market version it holds at
    _assigned: dict[str, str] | None = field(default=None, init=False, repr=False)  # `as_map`

    @classmethod
    def of(
        cls,
        assignments: Sequence[tuple[str, str, int]],
        blocking_pairs: Sequence[Pair],
        **run: int,
    ) -> Allocation:
        """From `(project id, offer id, amount)`s in id order and blocking pairs (sorted
        here); `run`: `repair_rounds`, `proposals_made`, `market_version`."""
        return cls(
            project_ids=np.array([a[0] for a in assignments], dtype=np.str_),
            offer_ids=np.array([a[1] for a in assignments], dtype=np.str_),
            amounts=np.array([a[2] for a in assignments], dtype=np.int64),
            blocking=np.array(sorted(blocking_pairs), dtype=np.str_).reshape(-1, 2),
            stable=not blocking_pairs,
            **run,
        )

    def __eq__(self, other: object) -> bool:
        """What it decided (not how the run went), as the objects compared before."""
        if not isinstance(other, Allocation):
            return NotImplemented
        return self.stable == other.stable and all(
            np.array_equal(a, b)
            for a, b in (
                (self.project_ids, other.project_ids),
                (self.offer_ids, other.offer_ids),
                (self.amounts, other.amounts),
                (self.blocking, other.blocking),
            )
        )

    __hash__ = None  # type: ignore[assignment]  # equal by value, as before: not hashable

    @property
    def assignments(self) -> list[Assignment]:
        return [
            Assignment(p, o, a)
            for p, o, a in zip(
                self.project_ids.tolist(),
                self.offer_ids.tolist(),
                self.amounts.tolist(),
                strict=True,
            )
        ]

    @property
    def blocking_pairs(self) -> list[Pair]:
        return [(p, o) for p, o in self.blocking.tolist()]

    def offer_of(self, project_id: str) -> str | None:
        return self.as_map().get(project_id)

    def as_map(self) -> dict[str, str]:
        """Project id → allocated offer id; made once and shared (never change it). Of strings
        only, so the collector does not track it."""
        for _ in self.make_map(self.project_ids.size or 1):
            pass
        assert self._assigned is not None
        return self._assigned

    def make_map(self, chunk: int = MAP_CHUNK) -> Iterator[None]:
        """Makes `as_map` `chunk` entries at a time, yielding between chunks, so that a caller
        on an event loop can let others run (~25 ms in one go at 78,000 assignments, over
        100 ms on a loaded machine). Nothing to do once made."""
        if self._assigned is not None:
            return
        made: dict[str, str] = {}
        for i in range(0, self.project_ids.size, chunk):
            if i:
                yield
            made.update(
                zip(
                    self.project_ids[i : i + chunk].tolist(),
                    self.offer_ids[i : i + chunk].tolist(),
                    strict=True,
                )
            )
        if self._assigned is None:  # (a caller made it meanwhile: theirs is the same)
            object.__setattr__(self, "_assigned", made)

    def moved_since(self, before: Allocation) -> list[str]:
        """The projects whose offer differs from `before` (held there or here only, or another
        offer), sorted: found on the columns (both sorted by id), without a Python loop over
        the ~78,000 assignments of a full market (~0.2 s of the event loop, loaded, before)."""
        gone = before.project_ids[~_held(before, self)]
        came = self.project_ids[~_held(self, before)]
        return sorted(set(gone.tolist()) | set(came.tolist()))


def _held(a: Allocation, b: Allocation) -> npt.NDArray[np.bool_]:
    """Of each of `a`'s assignments: whether `b` assigns its project to the same offer."""
    if b.project_ids.size == 0:
        return np.zeros(a.project_ids.size, dtype=bool)
    at = np.minimum(np.searchsorted(b.project_ids, a.project_ids), b.project_ids.size - 1)
    same: npt.NDArray[np.bool_] = (b.project_ids[at] == a.project_ids) & (
        b.offer_ids[at] == a.offer_ids
    )
    return same
