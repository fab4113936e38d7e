"""A plain-Python reference of the rules and score formulas, one pair at a time, written from
the documentation (docs/matching-engine.md) against the models, not the columns. The kernels
must agree with it."""

from __future__ import annotations

import math
from datetime import date, timedelta

from matching.domain.model import (
    DEFAULT_ENTERPRISE_WEIGHTS,
    DEFAULT_FUNDER_WEIGHTS,
    Instrument,
    Offer,
    Project,
    Stage,
)

STRENGTH = {
    "little_giant": 1.0,
    "specialized_sme": 0.8,
    "gazelle": 0.7,
    "high_tech_enterprise": 0.65,
    "innovative_sme": 0.5,
    "tech_sme": 0.45,
}


def failed(p: Project, o: Offer, as_of: date) -> list[str]:
    e, r = p.enterprise, o.requirements
    held = e.qualifications_on(as_of)
    years = e.years_on(as_of)
    a = min(p.amount_cny, o.ticket_max_cny)
    rate = o.pricing.rate_bp if o.instrument != Instrument.equity else None
    share = (
        o.pricing.max_equity_share
        if o.instrument in (Instrument.equity, Instrument.convertible)
        else None
    )
    checks = {
        "validity": (o.valid_from is None or o.valid_from <= as_of)
        and (o.valid_until is None or o.valid_until >= as_of),
        "city": not o.cities or e.city in o.cities,
        "sector": not o.sectors or p.sector in o.sectors,
        "stage": not o.stages or p.stage in o.stages,
        "instrument": o.instrument in p.instruments,
        "amount": o.ticket_min_cny <= p.amount_cny and o.ticket_max_cny >= p.floor_cny,
        "capacity": o.capacity_cny >= a,
        "deals": o.deals_left is None or o.deals_left > 0,
        "qualifications_any": not r.qualifications_any or bool(held & set(r.qualifications_any)),
        "qualifications_all": set(r.qualifications_all) <= held,
        "revenue": r.min_revenue_cny is None
        or (e.annual_revenue_cny is not None and e.annual_revenue_cny >= r.min_revenue_cny),
        "years": r.min_years is None or (years is not None and years >= r.min_years),
        "debt_ratio": r.max_debt_ratio is None
        or (e.debt_ratio is not None and e.debt_ratio <= r.max_debt_ratio),
        "collateral": not r.collateral_required
        or bool(set(r.collateral_required) & set(e.collateral)),
        "cost": rate is None or p.max_cost_bp is None or rate <= p.max_cost_bp,
        "dilution": share is None or p.max_dilution is None or share <= p.max_dilution,
        "deadline": p.deadline is None
        or p.deadline >= as_of + timedelta(days=o.decision_days or 0),
    }
    return [k for k, ok in checks.items() if not ok]


def _weighted(terms: dict[str, float | None], weights: dict[str, float]) -> float:
    total = sum(weights.values())
    return sum(weights[k] / total * (0.5 if terms[k] is None else terms[k]) for k in weights)


def enterprise_view(p: Project, o: Offer) -> tuple[float, dict[str, float | None]]:
    a = min(p.amount_cny, o.ticket_max_cny)
    rate = o.pricing.rate_bp if o.instrument != Instrument.equity else None
    share = (
        o.pricing.max_equity_share
        if o.instrument in (Instrument.equity, Instrument.convertible)
        else None
    )
    cost: float | None = None
    if rate is not None:
        ref = p.max_cost_bp if p.max_cost_bp is not None else 1000
        cost = min(max(1 - rate / max(ref, 1), 0.0), 1.0)
    elif share is not None:
        ref_s = p.max_dilution if p.max_dilution is not None else 0.5
        cost = min(max(1 - share / max(ref_s, 0.01), 0.0), 1.0)
    place = list(p.instruments).index(o.instrument) + 1 if o.instrument in p.instruments else 0
    terms = {
        "cost": cost,
        "speed": None if o.decision_days is None else 30 / (30 + o.decision_days),
        "amount": a / p.amount_cny,
        "instrument": 1 - (place - 1) / len(p.instruments) if place else 0.0,
        "collateral": 1.0 if not o.requirements.collateral_required else 0.5,
    }
    weights = {**DEFAULT_ENTERPRISE_WEIGHTS, **(p.weights or {})}
    return _weighted(terms, weights), terms


def funder_view(p: Project, o: Offer, as_of: date) -> tuple[float, dict[str, float | None]]:
    e = p.enterprise
    a = min(p.amount_cny, o.ticket_max_cny)
    prio_s, prio_c = o.preferences.priority_sectors, o.preferences.priority_cities
    if p.sector in prio_s:
        sector = 1.0
    elif o.sectors:
        sector = 0.75
    else:
        sector = 0.4 if prio_s else 0.5
    stages = sorted(list(Stage).index(s) for s in o.stages)
    if stages:
        center, half = (stages[0] + stages[-1]) / 2, max((stages[-1] - stages[0]) / 2, 0.5)
        stage = 1 - 0.5 * min(abs(list(Stage).index(p.stage) - center) / half, 1.0)
    else:
        stage = 0.5
    city = 0.5 if not prio_c else (1.0 if e.city in prio_c else 0.3)
    held = e.qualifications_on(as_of)
    quals = max((STRENGTH[q] for q in held), default=0.2)
    parts = []
    if e.annual_revenue_cny is not None:
        ratio = e.annual_revenue_cny / a
        parts.append(ratio / (1 + ratio))
    if e.debt_ratio is not None:
        parts.append(1 - e.debt_ratio)
    if e.rd_intensity is not None:
        parts.append(min(e.rd_intensity / 0.1, 1.0))
    mid = math.sqrt(o.ticket_min_cny * o.ticket_max_cny)
    edge = math.sqrt(o.ticket_min_cny / o.ticket_max_cny)
    closeness = min(a / mid, mid / a)
    ticket = min(max((closeness - edge) / (1 - edge), 0.0), 1.0) if edge < 1 else 1.0
    terms = {
        "sector": sector,
        "stage": stage,
        "city": city,
        "qualifications": quals,
        "financials": sum(parts) / len(parts) if parts else None,
        "ticket": ticket,
    }
    weights = {**DEFAULT_FUNDER_WEIGHTS, **(o.preferences.weights or {})}
    return _weighted(terms, weights), terms
