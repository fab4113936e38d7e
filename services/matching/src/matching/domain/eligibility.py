"""Hard eligibility rules as numpy kernels, and the machine-readable "why not" of a pair.

A kernel takes a project side `P` and an offer side `O` (dicts of columns from `columns.py`)
that broadcast against each other: one project against every offer, one offer against every
project, or a block of projects (column vectors) against offers. No per-pair Python loop. The
explanation of one pair runs the same kernels on one row each, so batch, incremental and the
"why not" never disagree. A comparison with NaN (unknown) is False: unknown enterprise data
never meets a requirement. Unknown offer terms (no rate, no decision time) restrict nothing."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np

from matching.domain.columns import Arr, Cols
from matching.domain.model import Offer, Project

# The order in which rules are evaluated and reported.
RULES = (
    "validity",
    "city",
    "sector",
    "stage",
    "instrument",
    "amount",
    "capacity",
    "deals",
    "qualifications_any",
    "qualifications_all",
    "revenue",
    "years",
    "debt_ratio",
    "collateral",
    "cost",
    "dilution",
    "deadline",
)


def allocated_amount(P: Cols, O: Cols) -> Arr:
    """What the offer would extend: the need, capped by the ticket maximum."""
    return np.minimum(P["amount"], O["tmax"])


def checks(P: Cols, O: Cols, as_of: int) -> dict[str, Arr]:
    """Every rule separately (for the explanation and the tests)."""
    with np.errstate(invalid="ignore"):
        return {
            "validity": O["active"] & (O["valid_from"] <= as_of) & (O["valid_until"] >= as_of),
            "city": (O["city_mask"] & P["city_bit"]) != 0,
            "sector": (O["sector_mask"] & P["sector_bit"]) != 0,
            "stage": (O["stage_mask"] & P["stage_bit"]) != 0,
            "instrument": (O["instr_bit"] & P["instr_mask"]) != 0,
            "amount": (O["tmin"] <= P["amount"]) & (O["tmax"] >= P["floor"]),
            "capacity": O["cap"] >= allocated_amount(P, O),
            "deals": O["deals_left"] > 0,
            "qualifications_any": (O["q_any"] == 0) | ((O["q_any"] & P["quals"]) != 0),
            "qualifications_all": (O["q_all"] & P["quals"]) == O["q_all"],
            "revenue": np.isnan(O["min_rev"]) | (P["revenue"] >= O["min_rev"]),
            "years": np.isnan(O["min_years"]) | (P["years"] >= O["min_years"]),
            "debt_ratio": np.isnan(O["max_debt"]) | (P["debt"] <= O["max_debt"]),
            "collateral": (O["coll_req"] == 0) | ((O["coll_req"] & P["coll"]) != 0),
            "cost": np.isnan(O["rate"]) | np.isnan(P["max_cost"]) | (O["rate"] <= P["max_cost"]),
            "dilution": np.isnan(O["eq_share"])
            | np.isnan(P["max_dil"])
            | (O["eq_share"] <= P["max_dil"]),
            "deadline": P["deadline"] >= as_of + O["days0"],
        }


def live_offers(O: Cols, as_of: int) -> Arr:
    """Offer-only rules: active, valid on the day, a deal and some capacity left."""
    return (
        O["active"]
        & (O["valid_from"] <= as_of)
        & (O["valid_until"] >= as_of)
        & (O["deals_left"] > 0)
        & (O["cap"] > 0)
    )


def categorical(P: Cols, O: Cols) -> Arr:
    """City, sector, stage and instrument: the cheap rules that prune most pairs."""
    ok: Arr = (O["city_mask"] & P["city_bit"]) != 0
    ok &= (O["sector_mask"] & P["sector_bit"]) != 0
    ok &= (O["stage_mask"] & P["stage_bit"]) != 0
    ok &= (O["instr_bit"] & P["instr_mask"]) != 0
    return ok


NUMERIC_P = (  # the project columns `numeric` reads
    "amount", "floor", "quals", "coll", "revenue", "years", "debt", "max_cost", "max_dil",
    "deadline",
)  # fmt: skip


def numeric(P: Cols, O: Cols, as_of: int) -> Arr:
    """The rules over amounts, requirements, cost and time (pairs already live and fitting)."""
    with np.errstate(invalid="ignore"):
        ok = O["tmin"] <= P["amount"]
        ok &= O["tmax"] >= P["floor"]
        ok &= O["cap"] >= np.minimum(P["amount"], O["tmax"])
        ok &= (O["q_any"] == 0) | ((O["q_any"] & P["quals"]) != 0)
        ok &= (O["q_all"] & P["quals"]) == O["q_all"]
        ok &= (O["coll_req"] == 0) | ((O["coll_req"] & P["coll"]) != 0)
        ok &= np.isnan(O["min_rev"]) | (P["revenue"] >= O["min_rev"])
        ok &= np.isnan(O["min_years"]) | (P["years"] >= O["min_years"])
        ok &= np.isnan(O["max_debt"]) | (P["debt"] <= O["max_debt"])
        ok &= ~(O["rate"] > P["max_cost"])
        ok &= ~(O["eq_share"] > P["max_dil"])
        ok &= P["deadline"] >= as_of + O["days0"]
    return ok


def eligible(P: Cols, O: Cols, as_of: int) -> Arr:
    ok = categorical(P, O)
    ok &= live_offers(O, as_of) & P["active"]
    ok &= numeric(P, O, as_of)
    return ok


def failed_rules(P: Cols, O: Cols, as_of: int) -> list[str]:
    """The rules one pair (one row each) fails, in report order."""
    c = checks(P, O, as_of)
    return [rule for rule in RULES if not bool(np.ravel(c[rule])[0])]


def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


def reasons(failed: list[str], p: Project, o: Offer, as_of: date) -> list[dict[str, Any]]:
    """One reason per failed rule: `{"rule", "need" (the project's side), "offer"}` and, where
    the project's data is missing, `"unknown": true` (missing data never meets a rule)."""
    e, r = p.enterprise, o.requirements
    held = e.qualifications_on(as_of)
    expired = sorted({str(q.kind) for q in e.qualifications if not q.valid_on(as_of)} - held)
    years = e.years_on(as_of)
    detail: dict[str, dict[str, Any]] = {
        "validity": {
            "need": as_of.isoformat(),
            "offer": [_iso(o.valid_from), _iso(o.valid_until)],
        },
        "city": {"need": str(e.city), "offer": [str(c) for c in o.cities]},
        "sector": {"need": str(p.sector), "offer": [str(s) for s in o.sectors]},
        "stage": {"need": str(p.stage), "offer": [str(s) for s in o.stages]},
        "instrument": {"need": [str(i) for i in p.instruments], "offer": str(o.instrument)},
        "amount": {
            "need": [p.floor_cny, p.amount_cny],
            "offer": [o.ticket_min_cny, o.ticket_max_cny],
        },
        "capacity": {"need": min(p.amount_cny, o.ticket_max_cny), "offer": o.capacity_cny},
        "deals": {"need": 1, "offer": o.deals_left},
        "qualifications_any": {
            "need": sorted(str(q) for q in held),
            "offer": [str(q) for q in r.qualifications_any],
        },
        "qualifications_all": {
            "need": sorted(str(q) for q in held),
            "offer": [str(q) for q in r.qualifications_all],
            "missing": sorted(str(q) for q in set(r.qualifications_all) - held),
        },
        "revenue": {"need": e.annual_revenue_cny, "offer": r.min_revenue_cny},
        "years": {"need": None if years is None else round(years, 2), "offer": r.min_years},
        "debt_ratio": {"need": e.debt_ratio, "offer": r.max_debt_ratio},
        "collateral": {
            "need": [str(c) for c in e.collateral],
            "offer": [str(c) for c in r.collateral_required],
        },
        "cost": {"need": p.max_cost_bp, "offer": o.pricing.rate_bp},
        "dilution": {"need": p.max_dilution, "offer": o.pricing.max_equity_share},
        "deadline": {
            "need": _iso(p.deadline),
            "offer": o.decision_days,
            "earliest_decision": (as_of + timedelta(days=o.decision_days or 0)).isoformat(),
        },
    }
    out = []
    for rule in failed:
        reason: dict[str, Any] = {"rule": rule, **detail[rule]}
        if reason["need"] is None:
            reason["unknown"] = True
        if rule.startswith("qualifications") and expired:
            reason["expired"] = expired
        out.append(reason)
    return out
