"""The matching engine's view of the market: enterprises and their projects (financing needs),
funders and their offers with rules, capacity and preferences. Pure data with validation.
Optional numbers are None when unknown, and unknown is never treated as agreement."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date
from enum import StrEnum
from typing import Annotated, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from matching.domain import uscc


class City(StrEnum):
    shanghai = "shanghai"  # Songjiang district, the corridor's origin
    jiaxing = "jiaxing"
    hangzhou = "hangzhou"
    jinhua = "jinhua"
    suzhou = "suzhou"
    huzhou = "huzhou"
    xuancheng = "xuancheng"
    wuhu = "wuhu"
    hefei = "hefei"


class Sector(StrEnum):
    integrated_circuits = "integrated_circuits"
    instruments_meters = "instruments_meters"
    new_materials = "new_materials"
    satellite_internet = "satellite_internet"
    aerospace = "aerospace"
    biomedicine = "biomedicine"
    new_energy = "new_energy"
    high_end_equipment = "high_end_equipment"
    low_altitude_economy = "low_altitude_economy"
    green_finance = "green_finance"


class Stage(StrEnum):  # in order: the stage term measures distance along it
    seed = "seed"
    angel = "angel"
    series_a = "series_a"
    series_b = "series_b"
    series_c = "series_c"
    growth = "growth"
    pre_ipo = "pre_ipo"


class Instrument(StrEnum):
    equity = "equity"
    credit_loan = "credit_loan"
    secured_loan = "secured_loan"
    ip_pledge_loan = "ip_pledge_loan"
    leasing = "leasing"
    convertible = "convertible"


class Qualification(StrEnum):
    high_tech_enterprise = "high_tech_enterprise"  # 高新技术企业
    tech_sme = "tech_sme"  # 科技型中小企业
    specialized_sme = "specialized_sme"  # 专精特新
    little_giant = "little_giant"  # national 专精特新“小巨人”
    innovative_sme = "innovative_sme"  # 创新型中小企业
    gazelle = "gazelle"  # 瞪羚企业


class Collateral(StrEnum):
    property = "property"
    equipment = "equipment"
    ip = "ip"
    receivables = "receivables"


class FunderKind(StrEnum):
    g60_fund = "g60_fund"
    bank = "bank"
    vc = "vc"
    leasing = "leasing"
    guarantor = "guarantor"
    securities = "securities"


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


Weights = dict[str, float] | None


def _weights_checker(
    criteria: tuple[str, ...], defaults: dict[str, float], side: str
) -> Callable[[Weights], Weights]:
    def check(value: Weights) -> Weights:
        if value is None:
            return None
        unknown = sorted(set(value) - set(criteria))
        if unknown:
            raise ValueError(
                f"unknown {side} criteria {unknown}; the criteria are {list(criteria)}"
            )
        for name, w in value.items():
            if not math.isfinite(w) or w < 0:
                raise ValueError(f"weight of {name!r} must be a finite number ≥ 0, not {w}")
        if sum({**defaults, **value}.values()) <= 0:
            raise ValueError(f"at least one {side} weight must be positive")
        return dict(value)

    return check


EnterpriseWeights = Annotated[
    dict[str, float] | None,
    AfterValidator(
        _weights_checker(ENTERPRISE_CRITERIA, DEFAULT_ENTERPRISE_WEIGHTS, "enterprise-side")
    ),
]
FunderWeights = Annotated[
    dict[str, float] | None,
    AfterValidator(_weights_checker(FUNDER_CRITERIA, DEFAULT_FUNDER_WEIGHTS, "funder-side")),
]


T = TypeVar("T")


def _unique(values: tuple[T, ...]) -> tuple[T, ...]:
    if len(set(values)) != len(values):
        raise ValueError("values must not repeat")
    return values


Amount = Annotated[int, Field(ge=0, le=10**13, description="integer CNY")]
PositiveAmount = Annotated[int, Field(gt=0, le=10**13, description="integer CNY")]
Fraction = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
_STRICT = ConfigDict(extra="forbid", frozen=True)


class HeldQualification(BaseModel):
    model_config = _STRICT
    kind: Qualification
    expires_on: date | None = None  # None: does not expire

    def valid_on(self, day: date) -> bool:
        return self.expires_on is None or self.expires_on >= day


class Enterprise(BaseModel):
    model_config = _STRICT
    id: str = Field(min_length=1)
    name: str = ""
    uscc: Annotated[str, AfterValidator(uscc.validate)]
    city: City
    district: str | None = None
    sectors: Annotated[tuple[Sector, ...], AfterValidator(_unique)] = ()
    founded_on: date | None = None
    headcount: int | None = Field(None, ge=0)
    annual_revenue_cny: Amount | None = None
    rd_intensity: Fraction | None = None
    debt_ratio: Fraction | None = None
    qualifications: tuple[HeldQualification, ...] = ()
    collateral: Annotated[tuple[Collateral, ...], AfterValidator(_unique)] = ()

    def qualifications_on(self, day: date) -> frozenset[Qualification]:
        return frozenset(q.kind for q in self.qualifications if q.valid_on(day))

    def years_on(self, day: date) -> float | None:
        return None if self.founded_on is None else (day - self.founded_on).days / 365.25


class Project(BaseModel):
    """A financing need, with its enterprise's profile embedded (the service joins it in).
    `instruments` are the acceptable ones in order of preference, the first preferred."""

    model_config = _STRICT
    id: str = Field(min_length=1)
    enterprise: Enterprise
    amount_cny: PositiveAmount
    min_amount_cny: PositiveAmount | None = None
    instruments: Annotated[tuple[Instrument, ...], AfterValidator(_unique)] = Field(min_length=1)
    stage: Stage
    sector: Sector
    purpose: str = ""
    term_months: int | None = Field(None, ge=1, le=600)
    max_cost_bp: int | None = Field(None, ge=0, le=100_000)
    deadline: date | None = None
    max_dilution: Fraction | None = None
    weights: EnterpriseWeights = None

    @model_validator(mode="after")
    def _minimum_within_amount(self) -> Project:
        if self.min_amount_cny is not None and self.min_amount_cny > self.amount_cny:
            raise ValueError(
                f"min_amount_cny ({self.min_amount_cny}) exceeds amount_cny ({self.amount_cny})"
            )
        return self

    @property
    def floor_cny(self) -> int:
        """The least amount the enterprise accepts."""
        return self.amount_cny if self.min_amount_cny is None else self.min_amount_cny


class Requirements(BaseModel):
    model_config = _STRICT
    qualifications_any: tuple[Qualification, ...] = ()  # at least one of them, if any given
    qualifications_all: tuple[Qualification, ...] = ()
    min_revenue_cny: Amount | None = None
    min_years: float | None = Field(None, ge=0, le=200)
    max_debt_ratio: Fraction | None = None
    collateral_required: tuple[Collateral, ...] = ()  # any one of them; empty: none needed


class Pricing(BaseModel):
    model_config = _STRICT
    rate_bp: int | None = Field(None, ge=0, le=100_000)  # annual all-in cost of debt
    max_equity_share: Fraction | None = None  # the largest stake taken, for equity


class Preferences(BaseModel):
    model_config = _STRICT
    weights: FunderWeights = None
    priority_cities: tuple[City, ...] = ()
    priority_sectors: tuple[Sector, ...] = ()


class Funder(BaseModel):
    model_config = _STRICT
    id: str = Field(min_length=1)
    name: str = ""
    kind: FunderKind
    city: City | None = None


class Offer(BaseModel):
    """An offer or product of a funder. Empty `cities`/`sectors`/`stages` mean all of them."""

    model_config = _STRICT
    id: str = Field(min_length=1)
    funder_id: str = Field(min_length=1)
    funder_kind: FunderKind = FunderKind.bank
    name: str = ""
    instrument: Instrument
    ticket_min_cny: PositiveAmount
    ticket_max_cny: PositiveAmount
    capacity_cny: Amount = Field(description="remaining capacity")
    max_deals: int | None = Field(None, ge=0)
    deals_taken: int = Field(0, ge=0)
    cities: Annotated[tuple[City, ...], AfterValidator(_unique)] = ()
    sectors: Annotated[tuple[Sector, ...], AfterValidator(_unique)] = ()
    stages: Annotated[tuple[Stage, ...], AfterValidator(_unique)] = ()
    requirements: Requirements = Requirements()
    pricing: Pricing = Pricing()
    decision_days: int | None = Field(None, ge=0, le=3650)
    response_deadline_days: int = Field(14, ge=1, le=3650)
    valid_from: date | None = None
    valid_until: date | None = None
    preferences: Preferences = Preferences()

    @model_validator(mode="after")
    def _ranges(self) -> Offer:
        if self.ticket_min_cny > self.ticket_max_cny:
            raise ValueError(
                f"ticket_min_cny ({self.ticket_min_cny}) exceeds ticket_max_cny "
                f"({self.ticket_max_cny})"
            )
        if self.valid_from and self.valid_until and self.valid_from > self.valid_until:
            raise ValueError("valid_from is after valid_until")
        return self

    @property
    def deals_left(self) -> int | None:
        return None if self.max_deals is None else max(self.max_deals - self.deals_taken, 0)
