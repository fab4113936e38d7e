"""Columnar encodings of offers and projects for the numpy kernels: every attribute is one 1-D
array, categorical sets are bit masks, unknown numbers are NaN, weights are normalised. Rows are
reused after removal (`active` marks the live ones); nothing ever depends on a row's number,
ties are broken by ids. Encoding depends on the "as of" day (qualification expiry, age)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import date
from enum import StrEnum
from typing import Any, ClassVar

import numpy as np

from matching.domain.model import (
    DEFAULT_ENTERPRISE_WEIGHTS,
    DEFAULT_FUNDER_WEIGHTS,
    ENTERPRISE_CRITERIA,
    FUNDER_CRITERIA,
    City,
    Collateral,
    Instrument,
    Offer,
    Project,
    Qualification,
    Sector,
    Stage,
)
from matching.domain.table import Arr as Arr
from matching.domain.table import Cols as Cols
from matching.domain.table import Table as Table  # re-exported: the kernels read columns from here

NO_LIMIT = 1 << 60  # "no limit" for integer columns (deals left, deadline, validity)
CITIES, SECTORS, STAGES = tuple(City), tuple(Sector), tuple(Stage)
INSTRUMENTS, QUALIFICATIONS, COLLATERALS = (
    tuple(Instrument),
    tuple(Qualification),
    tuple(Collateral),
)
QUALIFICATION_STRENGTH = {  # how much a funder's view values the best qualification held
    Qualification.little_giant: 1.0,
    Qualification.specialized_sme: 0.8,
    Qualification.gazelle: 0.7,
    Qualification.high_tech_enterprise: 0.65,
    Qualification.innovative_sme: 0.5,
    Qualification.tech_sme: 0.45,
}
NO_QUALIFICATION = 0.2
EQUITY_LIKE = frozenset({Instrument.equity, Instrument.convertible})  # may carry a stake
_INDEX: dict[StrEnum, int] = {
    v: i for universe in (CITIES, SECTORS, STAGES, INSTRUMENTS) for i, v in enumerate(universe)
}
_INDEX.update({v: i for universe in (QUALIFICATIONS, COLLATERALS) for i, v in enumerate(universe)})


def mask(
    values: Iterable[StrEnum], universe: tuple[StrEnum, ...], empty_is_all: bool = False
) -> int:
    bits = 0
    for v in values:
        bits |= 1 << _INDEX[v]
    return (1 << len(universe)) - 1 if bits == 0 and empty_is_all else bits


def members(bits: int, universe: tuple[StrEnum, ...]) -> list[str]:
    return [str(v) for i, v in enumerate(universe) if bits >> i & 1]


def normalised(override: dict[str, float] | None, defaults: dict[str, float]) -> list[float]:
    merged = {**defaults, **(override or {})}
    total = sum(merged.values())
    return [merged[c] / total for c in defaults]


# the defaults normalised once: nine in ten models keep them (a fifth of a project's encoding)
_ENTERPRISE_DEFAULT = tuple(normalised(None, DEFAULT_ENTERPRISE_WEIGHTS))
_FUNDER_DEFAULT = tuple(normalised(None, DEFAULT_FUNDER_WEIGHTS))
_EW_NAMES = tuple(f"ew_{c}" for c in ENTERPRISE_CRITERIA)


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


class OfferTable(Table):
    COLUMNS: ClassVar[dict[str, tuple[Any, Any]]] = {
        "instr": (np.int64, 0),
        "instr_bit": (np.int64, 0),
        "tmin": (np.int64, 1),
        "tmax": (np.int64, 1),
        "mid": (np.float64, 1.0),  # geometric centre of the ticket range
        "edge": (np.float64, 1.0),  # closeness of the range's ends to its centre
        "cap": (np.int64, 0),
        "deals_left": (np.int64, NO_LIMIT),
        "city_mask": (np.int64, 0),
        "sector_mask": (np.int64, 0),
        "stage_mask": (np.int64, 0),
        "q_any": (np.int64, 0),
        "q_all": (np.int64, 0),
        "coll_req": (np.int64, 0),
        "min_rev": (np.float64, math.nan),
        "min_years": (np.float64, math.nan),
        "max_debt": (np.float64, math.nan),
        "rate": (np.float64, math.nan),
        "eq_share": (np.float64, math.nan),
        "days": (np.float64, math.nan),
        "days0": (np.int64, 0),
        "valid_from": (np.int64, 0),
        "valid_until": (np.int64, NO_LIMIT),
        "prio_city": (np.int64, 0),
        "prio_sector": (np.int64, 0),
        "sector_explicit": (np.bool_, False),
        "stage_center": (np.float64, math.nan),  # NaN: open to every stage
        "stage_half": (np.float64, 0.5),
        **{f"fw_{c}": (np.float64, 0.0) for c in FUNDER_CRITERIA},
    }

    @staticmethod
    def encode(o: Offer) -> dict[str, Any]:
        r, stages = o.requirements, sorted(_INDEX[s] for s in o.stages)
        rate = o.pricing.rate_bp if o.instrument != Instrument.equity else None
        share = o.pricing.max_equity_share if o.instrument in EQUITY_LIKE else None
        weights = o.preferences.weights
        fw = normalised(weights, DEFAULT_FUNDER_WEIGHTS) if weights else _FUNDER_DEFAULT
        return {
            "instr": _INDEX[o.instrument],
            "instr_bit": 1 << _INDEX[o.instrument],
            "tmin": o.ticket_min_cny,
            "tmax": o.ticket_max_cny,
            "mid": math.sqrt(o.ticket_min_cny * o.ticket_max_cny),
            "edge": math.sqrt(o.ticket_min_cny / o.ticket_max_cny),
            "cap": o.capacity_cny,
            "deals_left": NO_LIMIT if o.deals_left is None else o.deals_left,
            "city_mask": mask(o.cities, CITIES, True),
            "sector_mask": mask(o.sectors, SECTORS, True),
            "stage_mask": mask(o.stages, STAGES, True),
            "q_any": mask(r.qualifications_any, QUALIFICATIONS),
            "q_all": mask(r.qualifications_all, QUALIFICATIONS),
            "coll_req": mask(r.collateral_required, COLLATERALS),
            "min_rev": _nan(r.min_revenue_cny),
            "min_years": _nan(r.min_years),
            "max_debt": _nan(r.max_debt_ratio),
            "rate": _nan(rate),
            "eq_share": _nan(share),
            "days": _nan(o.decision_days),
            "days0": o.decision_days or 0,
            "valid_from": o.valid_from.toordinal() if o.valid_from else 0,
            "valid_until": o.valid_until.toordinal() if o.valid_until else NO_LIMIT,
            "prio_city": mask(o.preferences.priority_cities, CITIES),
            "prio_sector": mask(o.preferences.priority_sectors, SECTORS),
            "sector_explicit": bool(o.sectors),
            "stage_center": (stages[0] + stages[-1]) / 2 if stages else math.nan,
            "stage_half": max((stages[-1] - stages[0]) / 2, 0.5) if stages else 0.5,
            **{f"fw_{c}": w for c, w in zip(FUNDER_CRITERIA, fw, strict=True)},
        }


class ProjectTable(Table):
    COLUMNS: ClassVar[dict[str, tuple[Any, Any]]] = {
        "city_bit": (np.int64, 0),
        "sector_bit": (np.int64, 0),
        "stage_bit": (np.int64, 0),
        "stage_idx": (np.float64, 0.0),
        "instr_mask": (np.int64, 0),
        "instr_rank": (np.int64, 0),  # 4 bits per instrument: its place in the list, from 1
        "n_instr": (np.float64, 1.0),
        "amount": (np.int64, 0),
        "floor": (np.int64, 0),
        "quals": (np.int64, 0),
        "coll": (np.int64, 0),
        "revenue": (np.float64, math.nan),
        "years": (np.float64, math.nan),
        "debt": (np.float64, math.nan),
        "rd": (np.float64, math.nan),
        "max_cost": (np.float64, math.nan),
        "max_dil": (np.float64, math.nan),
        "deadline": (np.int64, NO_LIMIT),
        "qual_strength": (np.float64, NO_QUALIFICATION),
        **{f"ew_{c}": (np.float64, 0.0) for c in ENTERPRISE_CRITERIA},
    }

    @staticmethod
    def encode(p: Project, as_of: date) -> dict[str, Any]:
        # one pass per set, bits from one table, no generators: a fifth of the batch load was
        # spent here (100,000 projects, ~30 us each); the same values as the plain formulas
        e, index = p.enterprise, _INDEX
        quals, strength = 0, -1.0
        for q in e.qualifications:
            if q.valid_on(as_of):
                quals |= 1 << index[q.kind]
                strength = max(strength, QUALIFICATION_STRENGTH[q.kind])
        rank = instr = 0
        for place, instrument in enumerate(p.instruments, start=1):
            i = index[instrument]
            rank |= place << (4 * i)
            instr |= 1 << i
        coll = 0
        for c in e.collateral:
            coll |= 1 << index[c]
        ew = normalised(p.weights, DEFAULT_ENTERPRISE_WEIGHTS) if p.weights else _ENTERPRISE_DEFAULT
        stage, revenue, years = index[p.stage], e.annual_revenue_cny, e.years_on(as_of)
        debt, rd, cost, dil = e.debt_ratio, e.rd_intensity, p.max_cost_bp, p.max_dilution
        nan = math.nan
        out = {
            "city_bit": 1 << index[e.city],
            "sector_bit": 1 << index[p.sector],
            "stage_bit": 1 << stage,
            "stage_idx": float(stage),
            "instr_mask": instr,
            "instr_rank": rank,
            "n_instr": float(len(p.instruments)),
            "amount": p.amount_cny,
            "floor": p.floor_cny,
            "quals": quals,
            "coll": coll,
            "revenue": nan if revenue is None else float(revenue),
            "years": nan if years is None else float(years),
            "debt": nan if debt is None else float(debt),
            "rd": nan if rd is None else float(rd),
            "max_cost": nan if cost is None else float(cost),
            "max_dil": nan if dil is None else float(dil),
            "deadline": p.deadline.toordinal() if p.deadline else NO_LIMIT,
            "qual_strength": NO_QUALIFICATION if strength < 0 else strength,
        }
        out.update(zip(_EW_NAMES, ew, strict=True))
        return out
