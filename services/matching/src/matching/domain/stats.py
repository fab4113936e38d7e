"""Corridor statistics as pure functions: the funnel of needs and matches grouped by a key,
durations as median and 90th percentile, and the why-not reasons of needs left unmatched."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

AGREED: frozenset[str] = frozenset({"agreed", "reserved", "rejected", "closed"})
RESERVED: frozenset[str] = frozenset({"reserved", "closed"})
ENDED: frozenset[str] = frozenset({"declined", "expired"})


@dataclass(frozen=True)
class Need:
    id: str
    city: str
    sector: str
    amount_cny: int
    created_at: datetime
    open: bool


@dataclass(frozen=True)
class Deal:
    """A match as the statistics see it."""

    project_id: str
    funder_id: str
    instrument: str
    status: str
    previous_status: str | None
    created_at: datetime
    updated_at: datetime
    closed_amount_cny: int | None

    def reached(self, states: frozenset[str]) -> bool:
        """True if the match is in one of `states`, or ended (declined, expired) from one."""
        return self.status in states or (
            self.status in ENDED and (self.previous_status or "") in states
        )


@dataclass
class Funnel:
    needs: int = 0
    requested_cny: int = 0
    matched_cny: int = 0  # requested by the needs that got at least one standing proposal
    proposals: int = 0
    agreed: int = 0
    reserved: int = 0
    closed: int = 0
    funded_cny: int = 0


def funnel(needs: Iterable[Need], deals: Iterable[Deal]) -> Funnel:
    f = Funnel()
    proposed: set[str] = set()
    for d in deals:
        if d.status == "retracted":
            continue  # withdrawn by the engine before anyone acted: not a proposal that stood
        proposed.add(d.project_id)
        f.proposals += 1
        f.agreed += d.reached(AGREED)
        f.reserved += d.reached(RESERVED)
        if d.status == "closed":
            f.closed += 1
            f.funded_cny += d.closed_amount_cny or 0
    for n in needs:
        f.needs += 1
        f.requested_cny += n.amount_cny
        f.matched_cny += n.amount_cny if n.id in proposed else 0
    return f


def by_need(needs: list[Need], deals: list[Deal], key: Callable[[Need], str]) -> dict[str, Funnel]:
    """Grouped by a property of the need (city, sector, month): its matches follow it."""
    groups: dict[str, list[Need]] = {}
    for n in needs:
        groups.setdefault(key(n), []).append(n)
    deals_of: dict[str, list[Deal]] = {}
    for d in deals:
        deals_of.setdefault(d.project_id, []).append(d)
    return {
        k: funnel(ns, [d for n in ns for d in deals_of.get(n.id, ())])
        for k, ns in sorted(groups.items())
    }


def by_deal(needs: list[Need], deals: list[Deal], key: Callable[[Deal], str]) -> dict[str, Funnel]:
    """Grouped by a property of the match (instrument, funder): the needs are those it
    proposed to."""
    need = {n.id: n for n in needs}
    groups: dict[str, list[Deal]] = {}
    for d in deals:
        if d.status != "retracted":
            groups.setdefault(key(d), []).append(d)
    out: dict[str, Funnel] = {}
    for k, ds in sorted(groups.items()):
        ids = sorted({d.project_id for d in ds})
        out[k] = funnel((need[i] for i in ids if i in need), ds)
    return out


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default), None when empty."""
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


@dataclass
class Spans:
    to_first_proposal: list[float] = field(default_factory=list)  # hours
    to_close: list[float] = field(default_factory=list)


def spans(needs: list[Need], deals: list[Deal]) -> Spans:
    first: dict[str, datetime] = {}
    closed: dict[str, datetime] = {}
    for d in deals:
        if d.project_id not in first or d.created_at < first[d.project_id]:
            first[d.project_id] = d.created_at
        if d.status == "closed" and (
            d.project_id not in closed or d.updated_at < closed[d.project_id]
        ):
            closed[d.project_id] = d.updated_at
    out = Spans()
    for n in needs:
        if n.id in first:
            out.to_first_proposal.append(_hours(first[n.id] - n.created_at))
        if n.id in closed:
            out.to_close.append(_hours(closed[n.id] - n.created_at))
    return out


def _hours(delta: timedelta) -> float:
    return max(delta.total_seconds(), 0.0) / 3600.0


def why_not(refusals: dict[str, list[list[str]]]) -> list[tuple[str, int, int]]:
    """`refusals`: for each unmatched need, the failed rules of each offer. Returns (rule,
    needs, pairs), most needs first."""
    needs: Counter[str] = Counter()
    pairs: Counter[str] = Counter()
    for per_offer in refusals.values():
        seen: set[str] = set()
        for rules in per_offer:
            for rule in set(rules):
                pairs[rule] += 1
                seen.add(rule)
        needs.update(seen)
    return sorted(((r, needs[r], pairs[r]) for r in needs), key=lambda t: (-t[1], -t[2], t[0]))
