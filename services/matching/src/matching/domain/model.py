"""The matching engine's view of the market: enterprises and their projects (needs), funders'
offers with rules, capacity and preferences. Pure data with validation; optional numbers are
None when unknown, and unknown is never treated as agreement."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

City = Literal[
    "shanghai", "jiaxing", "hangzhou", "jinhua", "suzhou", "huzhou", "xuancheng", "wuhu", "hefei"
]
Sector = Literal[
    "integrated_circuits",
    "instruments_meters",
    "new_materials",
    "satellite_internet",
    "aerospace",
    "biomedicine",
    "new_energy",
    "high_end_equipment",
    "low_altitude_economy",
    "green_finance",
]
Stage = Literal["seed", "angel", "series_a", "series_b", "series_c", "growth", "pre_ipo"]
Instrument = Literal[
    "equity", "credit_loan", "secured_loan", "ip_pledge_loan", "leasing", "convertible"
]
QualificationKind = Literal["high_tech_enterprise", "tech_sme", "specialized_sme", "little_giant"]
Collateral = Literal["property", "equipment", "ip", "receivables"]
FunderKind = Literal["g60_fund", "bank", "vc", "leasing", "guarantor", "securities"]

CITIES: tuple[str, ...] = City.__args__  # type: ignore[attr-defined]
SECTORS: tuple[str, ...] = Sector.__args__  # type: ignore[attr-defined]
STAGES: tuple[str, ...] = Stage.__args__  # type: ignore[attr-defined]
INSTRUMENTS: tuple[str, ...] = Instrument.__args__  # type: ignore[attr-defined]
QUALIFICATIONS: tuple[str, ...] = QualificationKind.__args__  # type: ignore[attr-defined]
COLLATERALS: tuple[str, ...] = Collateral.__args__  # type: ignore[attr-defined]
EQUITY_LIKE: frozenset[str] = frozenset({"equity", "convertible"})

_STRICT = ConfigDict(extra="forbid", frozen=True)


class Qualification(BaseModel):
    model_config = _STRICT
    kind: QualificationKind
    expires_on: date | None = None

    def valid_on(self, day: date) -> bool:
        return self.expires_on is None or self.expires_on >= day


class Enterprise(BaseModel):
    model_config = _STRICT
    id: str
    name: str = ""
    uscc: str = ""
    city: City
    district: str | None = None
    sectors: tuple[Sector, ...] = ()
    founded_on: date | None = None
    headcount: int | None = Field(None, ge=0)
    annual_revenue_cny: int | None = Field(None, ge=0)
    rd_intensity: float | None = Field(None, ge=0, le=1)
    debt_ratio: float | None = Field(None, ge=0, le=1)
    qualifications: tuple[Qualification, ...] = ()
    collateral: tuple[Collateral, ...] = ()

    def qualifications_on(self, day: date) -> frozenset[str]:
        return frozenset(q.kind for q in self.qualifications if q.valid_on(day))

    def years_on(self, day: date) -> float | None:
        return None if self.founded_on is None else (day - self.founded_on).days / 365.25


class Project(BaseModel):
    """A financing need, with its enterprise's profile embedded (the service joins it in)."""

    model_config = _STRICT
    id: str
    enterprise: Enterprise
    amount_cny: int = Field(gt=0)
    min_amount_cny: int | None = Field(None, gt=0)
    instruments: tuple[Instrument, ...] = Field(min_length=1)
    stage: Stage
    sector: Sector
    purpose: str = ""
    term_months: int | None = Field(None, ge=1)
    max_cost_bp: int | None = Field(None, ge=0)
    deadline: date | None = None
    max_dilution: float | None = Field(None, ge=0, le=1)
    weights: dict[str, float] | None = None

    @model_validator(mode="after")
    def _minimum_within_amount(self) -> Project:
        if self.min_amount_cny is not None and self.min_amount_cny > self.amount_cny:
            raise ValueError("min_amount_cny exceeds amount_cny")
        return self

    @property
    def floor_cny(self) -> int:
        """The least amount the enterprise accepts."""
        return self.min_amount_cny or self.amount_cny


class Requirements(BaseModel):
    model_config = _STRICT
    qualifications_any: tuple[QualificationKind, ...] = ()
    qualifications_all: tuple[QualificationKind, ...] = ()
    min_revenue_cny: int | None = Field(None, ge=0)
    min_years: float | None = Field(None, ge=0)
    max_debt_ratio: float | None = Field(None, ge=0, le=1)
    collateral_required: tuple[Collateral, ...] = ()  # any one of them


class Pricing(BaseModel):
    model_config = _STRICT
    rate_bp: int | None = Field(None, ge=0)
    max_equity_share: float | None = Field(None, ge=0, le=1)


class Preferences(BaseModel):
    model_config = _STRICT
    weights: dict[str, float] | None = None
    priority_cities: tuple[City, ...] = ()
    priority_sectors: tuple[Sector, ...] = ()


class Offer(BaseModel):
    model_config = _STRICT
    id: str
    funder_id: str
    funder_kind: FunderKind = "bank"
    name: str = ""
    instrument: Instrument
    ticket_min_cny: int = Field(gt=0)
    ticket_max_cny: int = Field(gt=0)
    capacity_cny: int = Field(ge=0, description="remaining capacity")
    max_deals: int | None = Field(None, ge=0)
    deals_taken: int = Field(0, ge=0)
    cities: tuple[City, ...] = ()  # empty: all
    sectors: tuple[Sector, ...] = ()
    stages: tuple[Stage, ...] = ()
    requirements: Requirements = Requirements()
    pricing: Pricing = Pricing()
    decision_days: int | None = Field(None, ge=0)
    response_deadline_days: int = Field(14, ge=1)
    valid_from: date | None = None
    valid_until: date | None = None
    preferences: Preferences = Preferences()

    @model_validator(mode="after")
    def _ticket_range(self) -> Offer:
        if self.ticket_min_cny > self.ticket_max_cny:
            raise ValueError("ticket_min_cny exceeds ticket_max_cny")
        return self

    @property
    def deals_left(self) -> int | None:
        return None if self.max_deals is None else max(self.max_deals - self.deals_taken, 0)
