"""Both sides' scores as numpy kernels (their per-criterion breakdowns: `explanations.py`).

The enterprise's view of an offer: cost, speed, amount coverage, instrument preference,
collateral fit. The funder's view of a project: sector fit, stage fit, priority city,
qualifications, financials, ticket fit. Each term lies in 0..1 and is NaN when unknown; a
total is the weighted mean with unknown terms at the neutral 0.5, and the breakdown flags
them. Only + - * / sqrt min max are used, which IEEE 754 rounds exactly, so a pair scores the
same bits whichever way round it is computed (one project × all offers, one offer × all
projects, or a block); totals are then quantised to integers (1e-9) for exact, id-broken ties."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from matching.domain.columns import Arr, Cols
from matching.domain.model import ENTERPRISE_CRITERIA, FUNDER_CRITERIA

NEUTRAL = 0.5  # what an unknown term contributes
SCALE = 1_000_000_000  # quantisation of totals: 1e-9
DEFAULT_RATE_REF_BP = 1000.0  # a rate's reference when the project states no maximum cost
DEFAULT_DILUTION_REF = 0.5
RD_FULL_MARKS = 0.10  # R&D intensity that scores 1
I64 = npt.NDArray[np.int64]
P_COLUMNS = (  # the project columns the totals read (a block gathers only these per pair)
    "amount", "city_bit", "debt", "instr_rank", "max_cost", "max_dil", "n_instr",
    "qual_strength", "rd", "revenue", "sector_bit", "stage_idx",
    *(f"ew_{c}" for c in ENTERPRISE_CRITERIA),
)  # fmt: skip
O_COLUMNS = (  # the offer columns the totals read
    "coll_req", "days", "edge", "eq_share", "instr", "mid", "prio_city", "prio_sector", "rate",
    "sector_explicit", "stage_center", "stage_half", "tmax", "tmin",
    *(f"fw_{c}" for c in FUNDER_CRITERIA),
)  # fmt: skip


def _amount(P: Cols, O: Cols) -> Arr:
    return np.minimum(P["amount"], O["tmax"]).astype(np.float64)


def enterprise_terms(P: Cols, O: Cols) -> dict[str, Arr]:
    """The enterprise's view of the offer, each term in 0..1, NaN where unknown."""
    with np.errstate(invalid="ignore", divide="ignore"):
        rate_ref = np.where(np.isnan(P["max_cost"]), DEFAULT_RATE_REF_BP, P["max_cost"])
        by_rate = np.clip(1.0 - O["rate"] / np.maximum(rate_ref, 1.0), 0.0, 1.0)
        share_ref = np.where(np.isnan(P["max_dil"]), DEFAULT_DILUTION_REF, P["max_dil"])
        by_share = np.clip(1.0 - O["eq_share"] / np.maximum(share_ref, 0.01), 0.0, 1.0)
        place = (P["instr_rank"] >> (4 * O["instr"])) & 15
        return {
            "cost": np.where(np.isnan(O["rate"]), by_share, by_rate),  # NaN if neither known
            "speed": 30.0 / (30.0 + O["days"]),
            "amount": _amount(P, O) / P["amount"],
            "instrument": np.where(place > 0, 1.0 - (place - 1) / P["n_instr"], 0.0),
            "collateral": np.where(O["coll_req"] == 0, 1.0, 0.5) + 0.0 * P["amount"],
        }


def funder_terms(P: Cols, O: Cols) -> dict[str, Arr]:
    """The funder's view of the project, each term in 0..1, NaN where unknown."""
    a = _amount(P, O)
    with np.errstate(invalid="ignore", divide="ignore"):
        sector = np.where(
            (O["prio_sector"] & P["sector_bit"]) != 0,
            1.0,
            np.where(O["sector_explicit"], 0.75, np.where(O["prio_sector"] != 0, 0.4, 0.5)),
        )
        distance = np.abs(P["stage_idx"] - O["stage_center"]) / O["stage_half"]
        stage = np.where(np.isnan(O["stage_center"]), 0.5, 1.0 - 0.5 * np.minimum(distance, 1.0))
        city = np.where(
            O["prio_city"] == 0, 0.5, np.where((O["prio_city"] & P["city_bit"]) != 0, 1.0, 0.3)
        )
        ratio = P["revenue"] / a
        parts = (
            ratio / (1.0 + ratio),  # revenue against the amount: 0.5 when equal
            1.0 - P["debt"],
            np.minimum(P["rd"] / RD_FULL_MARKS, 1.0),
        )
        known = sum((~np.isnan(x)).astype(np.float64) for x in parts)
        summed = sum(np.where(np.isnan(x), 0.0, x) for x in parts)
        financials = np.where(known > 0, summed / np.maximum(known, 1.0), np.nan)
        closeness = np.minimum(a / O["mid"], O["mid"] / a)
        ticket = np.where(
            O["edge"] < 1.0,
            np.clip((closeness - O["edge"]) / (1.0 - O["edge"]), 0.0, 1.0),
            1.0,
        )
        return {
            "sector": sector,
            "stage": stage + 0.0 * P["amount"],
            "city": city,
            "qualifications": P["qual_strength"] + 0.0 * O["tmin"],
            "financials": financials + 0.0 * O["tmin"],
            "ticket": ticket,
        }


def total(terms: dict[str, Arr], side: Cols, prefix: str, criteria: tuple[str, ...]) -> Arr:
    """Weighted mean (weights are normalised at encoding), unknown terms neutral."""
    acc: Arr = np.zeros(())
    for name in criteria:
        t = terms[name]
        acc = acc + side[f"{prefix}{name}"] * np.where(np.isnan(t), NEUTRAL, t)
    return acc


def quantise(x: Arr) -> I64:
    q: I64 = np.rint(x * SCALE).astype(np.int64)
    return q


def totals(P: Cols, O: Cols) -> tuple[I64, I64]:
    """Both sides' totals, quantised: (enterprise view, funder view)."""
    return totals_of(enterprise_terms(P, O), funder_terms(P, O), P, O)


def totals_of(et: dict[str, Arr], ft: dict[str, Arr], P: Cols, O: Cols) -> tuple[I64, I64]:
    """`totals` from both sides' terms, computed already."""
    e = total(et, P, "ew_", ENTERPRISE_CRITERIA)
    f = total(ft, O, "fw_", FUNDER_CRITERIA)
    return quantise(e), quantise(f)


def as_score(q: int) -> float:
    return round(q / SCALE, 4)


def combined(e_q: int, f_q: int) -> float:
    """The proposal ranking score: the mean of both views."""
    return round((e_q + f_q) / (2 * SCALE), 4)
