"""What-if advice: single changes to a project (or its enterprise's profile) that would make
more offers eligible, with how many — "obtain high_tech_enterprise certification → +3".

Candidates come from the offers the project misses: each qualification or collateral it lacks,
each instrument it does not accept, and the thresholds of the offers that reject it (ticket
bounds, capacity, cost, dilution, debt ratio, revenue, deadline). Each candidate is checked by
the same vectorised rules against every offer; only net gains are reported."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import numpy as np

from matching.domain.model import (
    Collateral,
    HeldQualification,
    Instrument,
    Offer,
    Project,
    Qualification,
)
from matching.domain.results import Advice
from matching.domain.state import MarketState

Candidate = tuple[str, dict[str, Any], Project]
NEAREST = 3  # thresholds tried on each side of the current value


def _with(p: Project, **enterprise: Any) -> Project:
    e = p.enterprise.model_copy(update=enterprise)
    return p.model_copy(update={"enterprise": e})


def _nearest(values: Iterable[float], above: bool) -> list[float]:
    distinct = sorted(set(values), reverse=not above)
    return distinct[:NEAREST]


def candidates(market: MarketState, p: Project, missed: list[Offer]) -> list[Candidate]:
    e, out = p.enterprise, list[Candidate]()
    held = e.qualifications_on(market.as_of)
    for q in Qualification:
        if q not in held:
            lapsed = any(x.kind == q for x in e.qualifications)
            quals = (*(x for x in e.qualifications if x.kind != q), HeldQualification(kind=q))
            verb = "renew" if lapsed else "obtain"
            out.append(
                (
                    f"{verb} {q} certification",
                    {"kind": "qualification", "value": str(q)},
                    _with(p, qualifications=quals),
                )
            )
    for c in Collateral:
        if c not in e.collateral:
            out.append(
                (
                    f"offer {c} as collateral",
                    {"kind": "collateral", "value": str(c)},
                    _with(p, collateral=(*e.collateral, c)),
                )
            )
    for i in Instrument:
        if i not in p.instruments:
            out.append(
                (
                    f"also accept {i}",
                    {"kind": "instrument", "value": str(i)},
                    p.model_copy(update={"instruments": (*p.instruments, i)}),
                )
            )
    floor, amount = p.floor_cny, p.amount_cny
    for x in _nearest((o.ticket_max_cny for o in missed if o.ticket_max_cny < floor), False):
        v = int(x)
        if p.min_amount_cny is None or v < p.min_amount_cny:
            out.append(
                (
                    f"accept a minimum of {v:,} CNY",
                    {"kind": "min_amount_cny", "value": v},
                    p.model_copy(update={"min_amount_cny": v}),
                )
            )
    for x in _nearest((o.ticket_min_cny for o in missed if o.ticket_min_cny > amount), True):
        v = int(x)
        out.append(
            (
                f"raise the amount to {v:,} CNY",
                {"kind": "amount_cny", "value": v},
                p.model_copy(update={"amount_cny": v}),
            )
        )
    caps = (o.capacity_cny for o in missed if 0 < o.capacity_cny < min(amount, o.ticket_max_cny))
    for x in _nearest(caps, False):
        v = int(x)
        out.append(
            (
                f"lower the amount to {v:,} CNY",
                {"kind": "amount_cny", "value": v},
                p.model_copy(update={"amount_cny": v, "min_amount_cny": None}),
            )
        )
    if p.max_cost_bp is not None:
        rates = (
            o.pricing.rate_bp
            for o in missed
            if o.pricing.rate_bp is not None and o.pricing.rate_bp > p.max_cost_bp
        )
        for x in _nearest(rates, True):
            out.append(
                (
                    f"accept a cost up to {int(x)} bp",
                    {"kind": "max_cost_bp", "value": int(x)},
                    p.model_copy(update={"max_cost_bp": int(x)}),
                )
            )
    if p.max_dilution is not None:
        shares = (
            o.pricing.max_equity_share
            for o in missed
            if o.pricing.max_equity_share is not None
            and o.pricing.max_equity_share > p.max_dilution
        )
        for x in _nearest(shares, True):
            out.append(
                (
                    f"accept dilution up to {x:.0%}",
                    {"kind": "max_dilution", "value": x},
                    p.model_copy(update={"max_dilution": x}),
                )
            )
    debts = (
        o.requirements.max_debt_ratio
        for o in missed
        if o.requirements.max_debt_ratio is not None
        and (e.debt_ratio is None or o.requirements.max_debt_ratio < e.debt_ratio)
    )
    for x in _nearest(debts, False):
        verb = (
            "report a debt ratio of at most" if e.debt_ratio is None else "lower the debt ratio to"
        )
        out.append((f"{verb} {x:.0%}", {"kind": "debt_ratio", "value": x}, _with(p, debt_ratio=x)))
    revenues = (
        o.requirements.min_revenue_cny
        for o in missed
        if o.requirements.min_revenue_cny is not None
        and (e.annual_revenue_cny is None or o.requirements.min_revenue_cny > e.annual_revenue_cny)
    )
    for x in _nearest(revenues, True):
        verb = (
            "report annual revenue of"
            if e.annual_revenue_cny is None
            else "reach annual revenue of"
        )
        out.append(
            (
                f"{verb} {int(x):,} CNY",
                {"kind": "annual_revenue_cny", "value": int(x)},
                _with(p, annual_revenue_cny=int(x)),
            )
        )
    if p.deadline is not None:
        days = (
            o.decision_days
            for o in missed
            if o.decision_days is not None
            and market.as_of + timedelta(days=o.decision_days) > p.deadline
        )
        for x in _nearest(days, True):
            later = market.as_of + timedelta(days=int(x))
            out.append(
                (
                    f"move the deadline to {later.isoformat()}",
                    {"kind": "deadline", "value": later.isoformat()},
                    p.model_copy(update={"deadline": later}),
                )
            )
    return out


def what_if(market: MarketState, project: Project, limit: int = 10) -> list[Advice]:
    base = market.eligible_offer_rows(project)
    base_set = set(base.tolist())
    ids = market.offers.ids
    live = [r for r in market.offers.row.values() if r not in base_set]
    missed = [market.offer_models[str(ids[r])] for r in live]
    out, seen = [], set()
    for change, detail, variant in candidates(market, project, missed):
        rows = market.eligible_offer_rows(variant)
        new = np.setdiff1d(rows, base, assume_unique=True)
        lost = int(np.setdiff1d(base, rows, assume_unique=True).size)
        effect = (detail["kind"], tuple(new.tolist()), lost)
        if new.size - lost > 0 and effect not in seen:  # the smallest change of a kind first
            seen.add(effect)
            names = sorted(str(ids[r]) for r in new.tolist())
            out.append(Advice(change, detail, int(new.size) - lost, tuple(names[:20]), lost))
    return sorted(out, key=lambda a: (-a.gain, a.change))[:limit]
