"""Public HTTP bodies of the funding service: funders, their offers (products) and capacity."""

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from g60_contracts.enums import (
    City,
    Collateral,
    FunderKind,
    Instrument,
    OfferStatus,
    Qualification,
    Sector,
    Stage,
)
from g60_contracts.types import (
    AmountCny,
    BasisPoints,
    Fraction,
    FunderWeights,
    Name,
    PositiveAmountCny,
    Text,
    UniqueList,
    count,
    not_null,
)

_IN = ConfigDict(extra="forbid")
MAX_DEALS = 1_000_000


class FunderIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"name": "长三角G60科创走廊基金", "kind": "g60_fund", "city": "shanghai"}]
        },
    )
    name: Name
    kind: FunderKind
    city: City | None = None
    description: Text = ""


class FunderOut(FunderIn):
    model_config = ConfigDict(extra="ignore")
    id: str
    created_at: datetime


class Requirements(BaseModel):
    model_config = _IN
    qualifications_any: UniqueList[Qualification] = []
    qualifications_all: UniqueList[Qualification] = []
    min_revenue_cny: AmountCny | None = None
    min_years: int | None = count(100)
    max_debt_ratio: Fraction | None = None
    collateral_required: UniqueList[Collateral] = Field(
        [], description="any one of these must be available; empty: none needed"
    )


class Pricing(BaseModel):
    model_config = _IN
    rate_bp: BasisPoints | None = Field(None, description="annual rate for debt products")
    max_equity_share: Fraction | None = Field(None, description="largest stake taken, for equity")


class Preferences(BaseModel):
    model_config = _IN
    weights: FunderWeights | None = None
    priority_cities: UniqueList[City] = []
    priority_sectors: UniqueList[Sector] = []


OFFER_EXAMPLE: dict[str, Any] = {
    "funder_id": "fun_51b7e0",
    "name": "科创贷 (sci-tech innovation loan)",
    "instrument": "credit_loan",
    "ticket_min_cny": 1000000,
    "ticket_max_cny": 30000000,
    "capacity_cny": 500000000,
    "max_deals": 40,
    "cities": ["shanghai", "jiaxing", "hangzhou"],
    "sectors": [],
    "stages": ["series_a", "series_b", "growth"],
    "requirements": {
        "qualifications_any": ["high_tech_enterprise", "tech_sme"],
        "min_revenue_cny": 5000000,
        "min_years": 2,
        "max_debt_ratio": 0.7,
    },
    "pricing": {"rate_bp": 380},
    "decision_days": 10,
    "response_deadline_days": 14,
    "valid_until": "2027-12-31",
    "preferences": {"priority_cities": ["shanghai"]},
}


class OfferIn(BaseModel):
    """An offer or product. Empty `cities`/`sectors`/`stages` mean: all of them."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [OFFER_EXAMPLE]})
    funder_id: str | None = Field(None, description="a funder key may leave it out (its own)")
    name: Name
    instrument: Instrument
    ticket_min_cny: PositiveAmountCny
    ticket_max_cny: PositiveAmountCny
    capacity_cny: AmountCny
    max_deals: int | None = count(MAX_DEALS, ge=1)
    cities: UniqueList[City] = []
    sectors: UniqueList[Sector] = []
    stages: UniqueList[Stage] = []
    requirements: Requirements = Requirements()
    pricing: Pricing = Pricing()
    decision_days: int | None = count(365)
    response_deadline_days: int = Field(14, ge=1, le=365, strict=True)
    valid_from: date | None = None
    valid_until: date | None = None
    preferences: Preferences = Preferences()


class OfferPatch(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"capacity_cny": 600000000}]}
    )
    name: Name | None = None
    ticket_min_cny: PositiveAmountCny | None = None
    ticket_max_cny: PositiveAmountCny | None = None
    capacity_cny: AmountCny | None = Field(
        None, description="new total capacity; reservations already made are kept"
    )
    max_deals: int | None = count(MAX_DEALS, ge=1)
    cities: UniqueList[City] | None = None
    sectors: UniqueList[Sector] | None = None
    stages: UniqueList[Stage] | None = None
    requirements: Requirements | None = None
    pricing: Pricing | None = None
    decision_days: int | None = count(365)
    response_deadline_days: int | None = count(365, ge=1)
    valid_from: date | None = None
    valid_until: date | None = None
    preferences: Preferences | None = None

    _required = field_validator(
        "name",
        "ticket_min_cny",
        "ticket_max_cny",
        "capacity_cny",
        "cities",
        "sectors",
        "stages",
        "requirements",
        "pricing",
        "response_deadline_days",
        "preferences",
    )(not_null)


class OfferOut(OfferIn):
    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    **OFFER_EXAMPLE,
                    "id": "off_0a9e77",
                    "funder_kind": "bank",
                    "status": "active",
                    "remaining_cny": 480000000,
                    "reserved_cny": 20000000,
                    "committed_cny": 0,
                    "deals_taken": 1,
                    "version": 3,
                    "created_at": "2026-11-26T08:00:00Z",
                    "updated_at": "2026-11-26T09:30:00Z",
                }
            ]
        },
    )
    id: str
    funder_id: str
    funder_kind: FunderKind
    status: OfferStatus
    remaining_cny: AmountCny = Field(description="capacity minus reserved and committed amounts")
    reserved_cny: AmountCny
    committed_cny: AmountCny
    deals_taken: int
    version: int
    created_at: datetime
    updated_at: datetime
