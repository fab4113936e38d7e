"""Both sides' score breakdowns of a block of pairs, for explanations and decisions: each
criterion's rounded score, weight and note, and the totals (`scoring.py` computes them)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from matching.domain.columns import INSTRUMENTS, QUALIFICATIONS, Arr, Cols, members
from matching.domain.model import ENTERPRISE_CRITERIA, FUNDER_CRITERIA
from matching.domain.scoring import SCALE, enterprise_terms, funder_terms, totals_of

Row = dict[str, list[Any]]  # columns as plain Python values, for the loops below


def _plain(cols: Cols, names: list[str], n: int) -> Row:
    """These columns as lists of Python values (one conversion per column: reading numpy
    scalars one pair and field at a time was most of the breakdowns' cost)."""
    return {k: np.broadcast_to(cols[k], (n,)).tolist() for k in names}


def _each(notes: list[str], n: int) -> list[str]:
    """A column of notes read from the offer's columns only, made once per offer row: one
    row (every pair has that offer) stands for all `n` pairs."""
    return notes * n if len(notes) == 1 else notes


def _enterprise_notes(P: Row, O: Row, Oo: Row) -> dict[str, list[str]]:
    """Each enterprise criterion's note, for every pair (a column each); `Oo`: the offer's
    columns unbroadcast (one row for all pairs, or one per pair)."""
    instrs, amounts = [int(x) for x in O["instr"]], [int(x) for x in P["amount"]]
    m = len(amounts)
    return {
        "cost": _each(
            [
                _cost_note(float(r), float(s))
                for r, s in zip(Oo["rate"], Oo["eq_share"], strict=True)
            ],
            m,
        ),
        "speed": _each([_speed_note(float(d)) for d in Oo["days"]], m),
        "amount": [
            f"{_thousands(min(a, int(t)))} of {_thousands(a)} CNY"
            for a, t in zip(amounts, O["tmax"], strict=True)
        ],
        "instrument": [
            _instrument_note(i, int(rank) >> (4 * i) & 15, int(n))
            for i, rank, n in zip(instrs, P["instr_rank"], P["n_instr"], strict=True)
        ],
        "collateral": _each(
            ["none required" if int(c) == 0 else "collateral required" for c in Oo["coll_req"]], m
        ),
    }


def _funder_notes(P: Row, O: Row, Oo: Row) -> dict[str, list[str]]:
    """Each funder criterion's note, for every pair (a column each); `Oo` as above."""
    n = len(P["quals"])
    return {
        "sector": [
            "priority sector"
            if int(prio) & int(bit)
            else ("within the offer's sectors" if bool(explicit) else "open to all")
            for prio, bit, explicit in zip(
                O["prio_sector"], P["sector_bit"], O["sector_explicit"], strict=True
            )
        ],
        "stage": _each(
            [
                "open to all stages" if s != s else "within the stages"
                for s in (float(x) for x in Oo["stage_center"])
            ],
            n,
        ),
        "city": [
            "no priority cities"
            if int(prio) == 0
            else ("priority city" if int(prio) & int(bit) else "not a priority city")
            for prio, bit in zip(O["prio_city"], P["city_bit"], strict=True)
        ],
        "qualifications": [_quals_note(int(q)) for q in P["quals"]],
        "financials": ["revenue, debt ratio and R&D intensity (those known)"] * n,
        "ticket": _each(
            [
                f"ticket {_thousands(int(lo))}–{_thousands(int(hi))} CNY"
                for lo, hi in zip(Oo["tmin"], Oo["tmax"], strict=True)
            ],
            n,
        ),
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
    is `round(x, 4)` of what the totals use, all columns rounded together (`rounded_rows`).
    Built a criterion at a time: its notes and terms for every pair, then each pair's view of
    its terms (a pair at a time, indexing every column and calling for its notes, and each
    column rounded on its own: 19.6 µs a pair at ~90 pairs, 12.0 now)."""
    raw = enterprise_terms(P, O), funder_terms(P, O)  # once: the totals are made of them
    e_q, f_q = totals_of(*raw, P, O)
    n = len(e_q)
    Pn, On = _plain(P, P_NOTES, n), _plain(O, O_NOTES, n)
    Oo = On if O["rate"].size == n else _plain(O, O_NOTES, int(O["rate"].size))
    parts = (  # each side's criteria, terms, columns (its weights), weights' prefix, notes, total
        (ENTERPRISE_CRITERIA, raw[0], P, "ew_", _enterprise_notes(Pn, On, Oo), e_q),
        (FUNDER_CRITERIA, raw[1], O, "fw_", _funder_notes(Pn, On, Oo), f_q),
    )
    named = [
        (name, terms, cols[prefix + name], notes[name])
        for c, terms, cols, prefix, notes, _ in parts
        for name in c
    ]
    scores = rounded_rows([t[name] for name, t, _, _ in named] + [q / SCALE for *_, q in parts], n)
    weights = rounded_rows([w for _, _, w, _ in named], n, nan=math.nan)
    columns = [  # per criterion, each pair's term (a score of None: unknown)
        [
            {
                "criterion": name,
                "score": score,
                "weight": weight,
                "unknown": score is None,
                "note": MISSING if score is None else note,
            }
            for score, weight, note in zip(score_row, weight_row, notes, strict=True)
        ]
        for (name, _, _, notes), score_row, weight_row in zip(
            named, scores[:-2], weights, strict=True
        )
    ]
    cut = len(ENTERPRISE_CRITERIA)
    sides = [
        [
            {"total": total_, "terms": list(terms)}
            for total_, terms in zip(totals_, zip(*side, strict=True), strict=True)
        ]
        for totals_, side in ((scores[-2], columns[:cut]), (scores[-1], columns[cut:]))
    ]
    return list(zip(*sides, strict=True))


MISSING = "data missing: counted as neutral 0.5"
TIE = 1e-6  # how near a half a scaled value may lie before `rounded` asks Python's `round`
VECTOR_AT = 24  # values from which `rounded_rows` takes the vector steps (measured crossover)


def rounded(x: Arr | float, n: int, nan: float | None = None) -> list[Any]:
    """`rounded_rows` of one array."""
    return rounded_rows([x], n, nan)[0]


def rounded_rows(xs: Sequence[Arr | float], n: int, nan: float | None = None) -> list[list[Any]]:
    """`round(v, 4)` of each of `n` values of each array (broadcast) as Python floats, bit for
    bit, a NaN as `nan` (None: an unknown term's score has none; a weight is never NaN).
    Vectorised: `rint(v * 1e4) / 1e4`, which is Python's result wherever `v * 1e4` lies
    clearly off a half (the product's rounding error, below 1e-11 for the values here, cannot
    then move the nearest integer; the division is correctly rounded as Python's decimal round
    trip is); the values near a half, large or not finite go through `round` itself. Rounding
    ~25 values per pair one call at a time was a fifth of the breakdowns' cost; the arrays go
    through the vector steps together (one column at a time, each step's fixed cost was most
    of it at a wide change's ~100 pairs)."""
    v = np.empty((len(xs), n))
    for row, x in zip(v, xs, strict=True):
        row[:] = x
    if n * len(xs) < VECTOR_AT:  # a few values: the vector steps cost more
        return [[nan if value != value else round(value, 4) for value in r] for r in v.tolist()]
    scaled = v * 1e4
    out: list[list[Any]] = (np.rint(scaled) / 1e4).tolist()
    with np.errstate(invalid="ignore"):
        odd = ~(np.abs(np.abs(scaled - np.trunc(scaled)) - 0.5) > TIE) | ~(np.abs(scaled) < 2**40)
    for r, i in zip(*(a.tolist() for a in np.nonzero(odd)), strict=True):
        value = float(v[r, i])
        out[r][i] = nan if value != value else round(value, 4)
    return out
