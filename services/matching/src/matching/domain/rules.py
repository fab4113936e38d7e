"""Eligibility rules and both sides' scores as numpy kernels over the columns of `tables.py`.

Each kernel takes a project side `P` and an offer side `O` (dicts of arrays) that broadcast
against each other: one project against every offer, one offer against every project, or a
block of projects against every offer. No per-pair Python loop; the explanation of one pair
(`explain_pair`) runs the very same kernels on one row each, so batch, incremental and the
"why not" can never disagree."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from matching.domain.model import INSTRUMENTS
from matching.domain.tables import ENTERPRISE_CRITERIA, FUNDER_CRITERIA

Cols = dict[str, npt.NDArray[Any]]
Arr = npt.NDArray[Any]

# The order in which rules are reported ("why not") and evaluated.
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
    "deadline",
)
NEUTRAL = 0.5  # the score an unknown criterion contributes


def allocated_amount(P: Cols, O: Cols) -> Arr:
    """What the offer would extend: the need, capped by the ticket maximum."""
    return np.minimum(P["amount"], O["tmax"])


def rule_checks(P: Cols, O: Cols, as_of: int) -> dict[str, Arr]:
    a = allocated_amount(P, O)
    with np.errstate(invalid="ignore"):
        return {
            "validity": O["active"] & (O["valid_from"] <= as_of) & (O["valid_until"] >= as_of),
            "city": (O["city_mask"] & P["city_bit"]) != 0,
            "sector": (O["sector_mask"] & P["sector_bit"]) != 0,
            "stage": (O["stage_mask"] & P["stage_bit"]) != 0,
            "instrument": (O["instr_bit"] & P["instr_mask"]) != 0,
            "amount": (O["tmin"] <= P["amount"]) & (O["tmax"] >= P["floor"]),
            "capacity": O["cap"] >= a,
            "deals": O["deals_left"] > 0,
            "qualifications_any": (O["q_any"] == 0) | ((O["q_any"] & P["quals"]) != 0),
            "qualifications_all": (O["q_all"] & P["quals"]) == O["q_all"],
            # a comparison with NaN (unknown) is False: unknown never satisfies a requirement
            "revenue": np.isnan(O["min_rev"]) | (P["revenue"] >= O["min_rev"]),
            "years": np.isnan(O["min_years"]) | (P["years"] >= O["min_years"]),
            "debt_ratio": np.isnan(O["max_debt"]) | (P["debt"] <= O["max_debt"]),
            "collateral": (O["coll_req"] == 0) | ((O["coll_req"] & P["coll"]) != 0),
            "cost": np.isnan(P["max_cost"]) | np.isnan(O["rate"]) | (O["rate"] <= P["max_cost"]),
            "deadline": np.isnan(O["days"]) | (as_of + np.nan_to_num(O["days"]) <= P["deadline"]),
        }


def eligible(P: Cols, O: Cols, as_of: int) -> Arr:
    checks = rule_checks(P, O, as_of)
    out = checks["validity"] & P["active"]
    for name in RULES[1:]:
        out = out & checks[name]
    return out


def enterprise_terms(P: Cols, O: Cols) -> dict[str, Arr]:
    """The enterprise's view of the offer, each term in 0..1, NaN where unknown."""
    a = allocated_amount(P, O)
    with np.errstate(invalid="ignore", divide="ignore"):
        debt_ref = np.where(np.isnan(P["max_cost"]), 1000.0, np.maximum(P["max_cost"], 1.0))
        eq_ref = np.where(np.isnan(P["max_dil"]), 0.5, np.maximum(P["max_dil"], 0.01))
        cost = np.where(
            ~np.isnan(O["rate"]),
            np.clip(1.0 - O["rate"] / debt_ref, 0.0, 1.0),
            np.clip(1.0 - O["eq_share"] / eq_ref, 0.0, 1.0),  # NaN stays NaN: unknown
        )
        return {
            "cost": cost,
            "speed": 1.0 / (1.0 + O["days"] / 30.0),
            "amount": a / P["amount"],
            "instrument": _instrument_preference(P, O),
            "collateral": np.where(O["coll_req"] == 0, 1.0, 0.6),
        }


def funder_terms(P: Cols, O: Cols) -> dict[str, Arr]:
    """The funder's view of the project, each term in 0..1, NaN where unknown."""
    a = allocated_amount(P, O).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        in_prio_sector = (O["prio_sector"] & P["sector_bit"]) != 0
        sector = np.where(in_prio_sector, 1.0, np.where(O["sector_explicit"], 0.7, 0.5))
        stage = np.where(O["stage_explicit"], 1.0, 0.5) + 0.0 * P["amount"]
        city = np.where(
            O["prio_city"] == 0, 0.5, np.where((O["prio_city"] & P["city_bit"]) != 0, 1.0, 0.3)
        )
        scale = np.clip(np.log10(P["revenue"] / a) / 2.0 + 0.5, 0.0, 1.0)
        leverage = 1.0 - P["debt"]
        financials = np.where(
            np.isnan(scale), leverage, np.where(np.isnan(leverage), scale, (scale + leverage) / 2)
        )
        mid = np.sqrt(O["tmin"].astype(np.float64) * O["tmax"])
        half_span = np.log(O["tmax"] / O["tmin"].astype(np.float64)) / 2.0
        ticket = np.where(
            half_span > 0, np.clip(1.0 - np.abs(np.log(a / mid)) / half_span, 0.0, 1.0), 1.0
        )
        return {
            "sector": sector,
            "stage": stage,
            "city": city,
            "qualifications": P["qual_strength"] + 0.0 * O["tmin"],
            "financials": financials,
            "ticket": ticket,
        }


def _instrument_preference(P: Cols, O: Cols) -> Arr:
    """How high the offer's instrument stands in the project's list (1 = first choice)."""
    out: Arr = np.zeros(np.broadcast_shapes(P["ip0"].shape, O["instr_bit"].shape))
    for k in range(len(INSTRUMENTS)):
        out = out + np.where(O["instr_bit"] == (1 << k), P[f"ip{k}"], 0.0)
    return out


def total(terms: dict[str, Arr], w: Arr, criteria: tuple[str, ...]) -> Arr:
    """Weighted mean with unknown terms at the neutral value (flagged in the breakdown)."""
    acc: Arr = 0.0  # type: ignore[assignment]
    for i, name in enumerate(criteria):
        acc = acc + w[..., i] * np.nan_to_num(terms[name], nan=NEUTRAL)
    wsum = w.sum(axis=-1)
    return np.where(wsum > 0, acc / np.where(wsum > 0, wsum, 1.0), NEUTRAL)


def totals(P: Cols, O: Cols) -> tuple[Arr, Arr]:
    e = total(enterprise_terms(P, O), P["ew"], ENTERPRISE_CRITERIA)
    f = total(funder_terms(P, O), O["fw"], FUNDER_CRITERIA)
    return e, f


def breakdown(terms: dict[str, Arr], w: Arr, criteria: tuple[str, ...]) -> dict[str, Any]:
    """One pair's view: total and each term (score None and unknown=True where unknown)."""
    out = []
    for i, name in enumerate(criteria):
        value = float(np.ravel(terms[name])[0])
        known = not np.isnan(value)
        out.append(
            {
                "criterion": name,
                "score": round(value, 4) if known else None,
                "weight": round(float(np.ravel(w[..., i])[0]), 4),
                "unknown": not known,
                "note": "" if known else "data missing: counted as neutral",
            }
        )
    value = float(np.ravel(total(terms, w, criteria))[0])
    return {"total": round(value, 4), "terms": out}
