"""Machine-readable reasons why a pair is not eligible ("why not"), one per failed rule, each
naming what the need has and what the offer asks for."""

from __future__ import annotations

from datetime import date
from typing import Any

from matching.domain.model import Offer, Project


def reasons_for(failed: list[str], p: Project, o: Offer, as_of: date) -> list[dict[str, Any]]:
    e, r = p.enterprise, o.requirements
    a = min(p.amount_cny, o.ticket_max_cny)
    held = sorted(e.qualifications_on(as_of))
    years = e.years_on(as_of)
    detail: dict[str, dict[str, Any]] = {
        "validity": {
            "need": as_of.isoformat(),
            "offer": [str(o.valid_from or ""), str(o.valid_until or "")],
        },
        "city": {"need": e.city, "offer": list(o.cities)},
        "sector": {"need": p.sector, "offer": list(o.sectors)},
        "stage": {"need": p.stage, "offer": list(o.stages)},
        "instrument": {"need": list(p.instruments), "offer": o.instrument},
        "amount": {
            "need": [p.floor_cny, p.amount_cny],
            "offer": [o.ticket_min_cny, o.ticket_max_cny],
        },
        "capacity": {"need": a, "offer": o.capacity_cny},
        "deals": {"need": 1, "offer": o.deals_left},
        "qualifications_any": {"need": held, "offer": list(r.qualifications_any)},
        "qualifications_all": {"need": held, "offer": list(r.qualifications_all)},
        "revenue": {"need": e.annual_revenue_cny, "offer": r.min_revenue_cny},
        "years": {"need": None if years is None else round(years, 2), "offer": r.min_years},
        "debt_ratio": {"need": e.debt_ratio, "offer": r.max_debt_ratio},
        "collateral": {"need": list(e.collateral), "offer": list(r.collateral_required)},
        "cost": {"need": p.max_cost_bp, "offer": o.pricing.rate_bp},
        "deadline": {"need": str(p.deadline) if p.deadline else None, "offer": o.decision_days},
    }
    out = []
    for rule in failed:
        reason = {"rule": rule, **detail[rule]}
        if reason["need"] is None:
            reason["unknown"] = True  # the enterprise did not say: not counted as meeting it
        out.append(reason)
    return out
