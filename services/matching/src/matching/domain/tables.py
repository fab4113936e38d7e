"""Columnar encodings of offers and projects: each attribute is one numpy array, categorical
sets are bit masks, unknown numbers are NaN. Rows are reused after removal; `active` marks the
live ones. The kernels in `rules.py` work on these columns without per-pair Python loops."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import date
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from matching.domain.model import (
    CITIES,
    COLLATERALS,
    INSTRUMENTS,
    QUALIFICATIONS,
    SECTORS,
    STAGES,
    Offer,
    Project,
)

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

ENTERPRISE_CRITERIA = ("cost", "speed", "amount", "instrument", "collateral")
FUNDER_CRITERIA = ("sector", "stage", "city", "qualifications", "financials", "ticket")
DEFAULT_ENTERPRISE_WEIGHTS = {
    "cost": 0.30,
    "speed": 0.20,
    "amount": 0.25,
    "instrument": 0.15,
    "collateral": 0.10,
}
DEFAULT_FUNDER_WEIGHTS = {
    "sector": 0.25,
    "stage": 0.15,
    "city": 0.15,
    "qualifications": 0.20,
    "financials": 0.15,
    "ticket": 0.10,
}
NO_LIMIT = np.iinfo(np.int64).max // 4
QUALIFICATION_STRENGTH = {  # how much a funder's view values each qualification
    "little_giant": 1.0,
    "specialized_sme": 0.8,
    "high_tech_enterprise": 0.65,
    "tech_sme": 0.45,
}


def mask(values: Iterable[str], universe: tuple[str, ...], empty_means_all: bool = False) -> int:
    bits = 0
    for v in values:
        bits |= 1 << universe.index(v)
    if bits == 0 and empty_means_all:
        return (1 << len(universe)) - 1
    return bits


def weights(override: dict[str, float] | None, defaults: dict[str, float]) -> list[float]:
    merged = {**defaults, **{k: v for k, v in (override or {}).items() if k in defaults}}
    return [max(float(merged[c]), 0.0) for c in defaults]


def _nan(value: float | int | None) -> float:
    return math.nan if value is None else float(value)


class Table:
    """Growable columns with an id ↔ row map."""

    COLUMNS: ClassVar[dict[str, tuple[Any, Any]]] = {}  # name → (dtype, fill)
    MATRICES: ClassVar[dict[str, int]] = {}  # name → width (float64)

    def __init__(self, capacity: int = 64) -> None:
        self.size = 0
        self.capacity = capacity
        self.cols: dict[str, npt.NDArray[Any]] = {
            name: np.full(capacity, fill, dtype=dtype)
            for name, (dtype, fill) in self.COLUMNS.items()
        }
        self.cols["active"] = np.zeros(capacity, dtype=bool)
        for name, width in self.MATRICES.items():
            self.cols[name] = np.zeros((capacity, width), dtype=np.float64)
        self.row: dict[str, int] = {}
        self.ids: list[str | None] = [None] * capacity
        self.free: list[int] = []
        self.id_rank = np.zeros(capacity, dtype=np.int64)  # order of ids, for tie breaks
        self._rank_dirty = True

    def _grow(self) -> None:
        new = self.capacity * 2
        for name, col in self.cols.items():
            shape = (new, *col.shape[1:])
            grown = np.zeros(shape, dtype=col.dtype)
            if name in self.COLUMNS:
                grown[:] = self.COLUMNS[name][1]
            grown[: self.capacity] = col
            self.cols[name] = grown
        self.ids.extend([None] * (new - self.capacity))
        self.id_rank = np.resize(self.id_rank, new)
        self.capacity = new

    def put(self, id: str, values: dict[str, Any]) -> int:
        row = self.row.get(id)
        if row is None:
            if self.free:
                row = self.free.pop()
            else:
                if self.size == self.capacity:
                    self._grow()
                row = self.size
                self.size += 1
            self.row[id] = row
            self.ids[row] = id
            self._rank_dirty = True
        for name, value in values.items():
            self.cols[name][row] = value
        self.cols["active"][row] = True
        return row

    def remove(self, id: str) -> int | None:
        row = self.row.pop(id, None)
        if row is not None:
            self.cols["active"][row] = False
            self.ids[row] = None
            self.free.append(row)
            self._rank_dirty = True
        return row

    def view(self) -> dict[str, npt.NDArray[Any]]:
        return {name: col[: self.size] for name, col in self.cols.items()}

    def ranks(self) -> I64:
        """Position of each row's id in sorted id order (inactive rows last)."""
        if self._rank_dirty:
            order = sorted(self.row, key=str)
            self.id_rank[:] = NO_LIMIT
            for i, id in enumerate(order):
                self.id_rank[self.row[id]] = i
            self._rank_dirty = False
        return self.id_rank[: self.size]


class OfferTable(Table):
    COLUMNS: ClassVar[dict[str, tuple[Any, Any]]] = {
        "instr_bit": (np.int64, 0),
        "tmin": (np.int64, 0),
        "tmax": (np.int64, 0),
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
        "valid_from": (np.int64, 0),
        "valid_until": (np.int64, NO_LIMIT),
        "prio_city": (np.int64, 0),
        "prio_sector": (np.int64, 0),
        "sector_explicit": (np.bool_, False),
        "stage_explicit": (np.bool_, False),
    }
    MATRICES: ClassVar[dict[str, int]] = {"fw": len(FUNDER_CRITERIA)}

    @staticmethod
    def encode(o: Offer) -> dict[str, Any]:
        r = o.requirements
        return {
            "instr_bit": 1 << INSTRUMENTS.index(o.instrument),
            "tmin": o.ticket_min_cny,
            "tmax": o.ticket_max_cny,
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
            "rate": _nan(o.pricing.rate_bp),
            "eq_share": _nan(o.pricing.max_equity_share),
            "days": _nan(o.decision_days),
            "valid_from": o.valid_from.toordinal() if o.valid_from else 0,
            "valid_until": o.valid_until.toordinal() if o.valid_until else NO_LIMIT,
            "prio_city": mask(o.preferences.priority_cities, CITIES),
            "prio_sector": mask(o.preferences.priority_sectors, SECTORS),
            "sector_explicit": bool(o.sectors),
            "stage_explicit": bool(o.stages),
            "fw": weights(o.preferences.weights, DEFAULT_FUNDER_WEIGHTS),
        }


class ProjectTable(Table):
    COLUMNS: ClassVar[dict[str, tuple[Any, Any]]] = {
        "city_bit": (np.int64, 0),
        "sector_bit": (np.int64, 0),
        "stage_bit": (np.int64, 0),
        "instr_mask": (np.int64, 0),
        "amount": (np.int64, 0),
        "floor": (np.int64, 0),
        "quals": (np.int64, 0),
        "coll": (np.int64, 0),
        "revenue": (np.float64, math.nan),
        "years": (np.float64, math.nan),
        "debt": (np.float64, math.nan),
        "max_cost": (np.float64, math.nan),
        "max_dil": (np.float64, math.nan),
        "deadline": (np.int64, NO_LIMIT),
        "qual_strength": (np.float64, 0.2),
        **{f"ip{k}": (np.float64, 0.0) for k in range(len(INSTRUMENTS))},
    }
    MATRICES: ClassVar[dict[str, int]] = {"ew": len(ENTERPRISE_CRITERIA)}

    @staticmethod
    def encode(p: Project, as_of: date) -> dict[str, Any]:
        e = p.enterprise
        held = e.qualifications_on(as_of)
        prefs = [0.0] * len(INSTRUMENTS)
        for rank, instrument in enumerate(p.instruments):
            prefs[INSTRUMENTS.index(instrument)] = 1.0 - rank / len(p.instruments)
        return {
            "city_bit": 1 << CITIES.index(e.city),
            "sector_bit": 1 << SECTORS.index(p.sector),
            "stage_bit": 1 << STAGES.index(p.stage),
            "instr_mask": mask(p.instruments, INSTRUMENTS),
            "amount": p.amount_cny,
            "floor": p.floor_cny,
            "quals": mask(held, QUALIFICATIONS),
            "coll": mask(e.collateral, COLLATERALS),
            "revenue": _nan(e.annual_revenue_cny),
            "years": _nan(e.years_on(as_of)),
            "debt": _nan(e.debt_ratio),
            "max_cost": _nan(p.max_cost_bp),
            "max_dil": _nan(p.max_dilution),
            "deadline": p.deadline.toordinal() if p.deadline else NO_LIMIT,
            "qual_strength": max((QUALIFICATION_STRENGTH[q] for q in held), default=0.2),
            "ew": weights(p.weights, DEFAULT_ENTERPRISE_WEIGHTS),
            **{f"ip{k}": prefs[k] for k in range(len(INSTRUMENTS))},
        }
