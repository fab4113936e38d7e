"""What the engine answers: proposals, deltas, explanations, advice and the allocation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Pair = tuple[str, str]  # (project id, offer id)
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


@dataclass(frozen=True)
class Allocation:
    """Each project at most one offer covering its amount, within every offer's capacity and
    deals. `stable` is true exactly when `blocking_pairs` is empty."""

    assignments: list[Assignment]
    stable: bool
    blocking_pairs: list[Pair]
    # how the run went, not what it decided: the number of proposals depends on the order in
    # which tied applicants come (two runs over the same market in another order differ here)
    repair_rounds: int = field(default=0, compare=False)
    proposals_made: int = field(default=0, compare=False)
    market_version: int = field(default=0, compare=False)  # the market version it holds at

    def offer_of(self, project_id: str) -> str | None:
        for a in self.assignments:
            if a.project_id == project_id:
                return a.offer_id
        return None

    def as_map(self) -> dict[str, str]:
        return {a.project_id: a.offer_id for a in self.assignments}
