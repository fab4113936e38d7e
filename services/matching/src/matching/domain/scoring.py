"""Both sides' scores as numpy kernels, with a per-criterion breakdown for explanations.

The enterprise's view of an offer: cost, speed, amount coverage, instrument preference,
collateral fit. The funder's view of a project: sector fit, stage fit, priority city,
qualifications, financials, ticket fit. Each term lies in 0..1 and is NaN when unknown; a
total is the weighted mean with unknown terms at the neutral 0.5, and the breakdown flags
them. Only + - * / sqrt min max are used, which IEEE 754 rounds exactly, so a pair scores the
same bits whichever way round it is computed (one project × all offers, one offer × all
projects, or a block); totals are then quantised to integers (1e-9) for exact, id-broken ties."""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from matching.domain.columns import INSTRUMENTS, QUALIFICATIONS, Arr, Cols, members
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
    return _totals(enterprise_terms(P, O), funder_terms(P, O), P, O)


def _totals(et: dict[str, Arr], ft: dict[str, Arr], P: Cols, O: Cols) -> tuple[I64, I64]:
    """`totals` from both sides' terms, computed already."""
    e = total(et, P, "ew_", ENTERPRISE_CRITERIA)
    f = total(ft, O, "fw_", FUNDER_CRITERIA)
    return quantise(e), quantise(f)


def as_score(q: int) -> float:
    return round(q / SCALE, 4)


def combined(e_q: int, f_q: int) -> float:
    """The proposal ranking score: the mean of both views."""
    return round((e_q + f_q) / (2 * SCALE), 4)


# ---- breakdowns for explanations (a handful of pairs at a time) ---------------------------------


Row = dict[str, list[Any]]  # columns as plain Python values, for the loops below


def _plain(cols: Cols, names: list[str], n: int) -> Row:
    """These columns as lists of Python values (one conversion per column: reading numpy
    scalars one pair and field at a time was most of the breakdowns' cost)."""
    return {k: np.broadcast_to(cols[k], (n,)).tolist() for k in names}


def _enterprise_notes(P: Row, O: Row, i: int) -> dict[str, str]:
    instr, amount = int(O["instr"][i]), int(P["amount"][i])
    return {
        "cost": _cost_note(float(O["rate"][i]), float(O["eq_share"][i])),
        "speed": _speed_note(float(O["days"][i])),
        "amount": f"{_thousands(min(amount, int(O['tmax'][i])))} of {_thousands(amount)} CNY",
        "instrument": _instrument_note(
            instr, int(P["instr_rank"][i]) >> (4 * instr) & 15, int(P["n_instr"][i])
        ),
        "collateral": "none required" if int(O["coll_req"][i]) == 0 else "collateral required",
    }


def _funder_notes(P: Row, O: Row, i: int) -> dict[str, str]:
    prio_city, prio_sector = int(O["prio_city"][i]), int(O["prio_sector"][i])
    stage = float(O["stage_center"][i])
    return {
        "sector": "priority sector"
        if prio_sector & int(P["sector_bit"][i])
        else ("within the offer's sectors" if bool(O["sector_explicit"][i]) else "open to all"),
        "stage": "open to all stages" if stage != stage else "within the stages",
        "city": "no priority cities"
        if prio_city == 0
        else ("priority city" if prio_city & int(P["city_bit"][i]) else "not a priority city"),
        "qualifications": _quals_note(int(P["quals"][i])),
        "financials": "revenue, debt ratio and R&D intensity (those known)",
        "ticket": f"ticket {_thousands(int(O['tmin'][i]))}–{_thousands(int(O['tmax'][i]))} CNY",
    }


# The notes' parts that repeat across pairs (an offer's in every pair of a wide change, a
# project's qualifications), each formatted once: `:,` and `:.0%` formatting per pair and
# note was a third of the breakdowns' cost. Pure functions of small values, bounded caches.
@lru_cache(maxsize=4096)
def _thousands(amount: int) -> str:
    return f"{amount:,}"


@lru_cache(maxsize=1024)
def _cost_note(rate: float, share: float) -> str:
    if rate == rate:
        return f"{rate:.0f} bp a year"
    return f"up to {share:.0%} equity" if share == share else ""


@lru_cache(maxsize=256)
def _speed_note(days: float) -> str:
    return f"decision in {days:.0f} days" if days == days else ""


@lru_cache(maxsize=256)
def _instrument_note(instr: int, place: int, n: int) -> str:
    return f"{INSTRUMENTS[instr]}: " + (f"choice {place} of {n}" if place else "not accepted")


@lru_cache(maxsize=1024)
def _quals_note(bits: int) -> str:
    quals = members(bits, QUALIFICATIONS)
    return ", ".join(quals) if quals else "none held"


P_NOTES = ["instr_rank", "n_instr", "amount", "quals", "sector_bit", "city_bit"]
O_NOTES = ["rate", "eq_share", "days", "instr", "tmax", "tmin", "coll_req", "prio_city"]
O_NOTES += ["prio_sector", "sector_explicit", "stage_center"]


def breakdowns(P: Cols, O: Cols) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """For aligned pairs P[i], O[i]: (enterprise view, funder view), each
    `{"total", "terms": [{"criterion", "score", "weight", "unknown", "note"}]}`. Every number
    is `round(x, 4)` of what the totals use, rounded a column at a time (`rounded`)."""
    raw = enterprise_terms(P, O), funder_terms(P, O)  # once: the totals are made of them
    e_q, f_q = _totals(*raw, P, O)
    n = len(e_q)
    Pn, On = _plain(P, P_NOTES, n), _plain(O, O_NOTES, n)
    sides = [
        (
            [  # per criterion: its name, rounded scores (None: unknown), rounded weights
                (name, rounded(terms[name], n), rounded(cols[prefix + name], n, nan=math.nan))
                for name in criteria
            ],
            rounded(q / SCALE, n),
            notes,
        )
        for terms, cols, prefix, criteria, q, notes in (
            (raw[0], P, "ew_", ENTERPRISE_CRITERIA, e_q, _enterprise_notes),
            (raw[1], O, "fw_", FUNDER_CRITERIA, f_q, _funder_notes),
        )
    ]
    out = []
    for i in range(n):
        views = []
        for columns, totals_, notes in sides:
            note = notes(Pn, On, i)
            views.append(
                {
                    "total": totals_[i],
                    "terms": [
                        {
                            "criterion": name,
                            "score": score[i],
                            "weight": weight[i],
                            "unknown": score[i] is None,
                            "note": MISSING if score[i] is None else note[name],
                        }
                        for name, score, weight in columns
                    ],
                }
            )
        out.append((views[0], views[1]))
    return out


MISSING = "data missing: counted as neutral 0.5"
TIE = 1e-6  # how near a half a scaled value may lie before `rounded` asks Python's `round`
VECTOR_AT = 24  # pairs from which `rounded` works a column at a time (measured crossover)


def rounded(x: Arr, n: int, nan: float | None = None) -> list[Any]:
    """`round(v, 4)` of each of `n` values (`x` broadcast) as Python floats, bit for bit, a NaN
    as `nan` (None: an unknown term's score has none; a weight is never NaN). Vectorised:
    `rint(v * 1e4) / 1e4`, which is Python's result wherever `v * 1e4` lies clearly off a
    half (the product's rounding error, below 1e-11 for the values here, cannot then move the
    nearest integer; the division is correctly rounded as Python's decimal round trip is);
    the values near a half, large or not finite go through `round` itself. Rounding ~25
    values per pair one call at a time was a fifth of the breakdowns' cost."""
    v = np.broadcast_to(np.asarray(x, dtype=np.float64), (n,))
    if n < VECTOR_AT:  # a few pairs (a new need's top k): the vector steps cost more
        return [nan if value != value else round(value, 4) for value in v.tolist()]
    scaled = v * 1e4
    out: list[Any] = (np.rint(scaled) / 1e4).tolist()
    with np.errstate(invalid="ignore"):
        odd = ~(np.abs(np.abs(scaled - np.trunc(scaled)) - 0.5) > TIE) | ~(np.abs(scaled) < 2**40)
    values = v.tolist()
    for i in np.flatnonzero(odd).tolist():
        value = values[i]
        out[i] = nan if value != value else round(value, 4)
    return out
